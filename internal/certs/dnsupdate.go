package certs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// RFC2136 is a libdns provider that adds and removes records with RFC 2136
// dynamic updates signed with TSIG (RFC 8945): BIND, Knot, PowerDNS and
// most self-hosted DNS servers accept them. It lets ACME DNS-01 work
// where ports 80 and 443 cannot reach the box, and it is the only way to
// get wildcard certificates.
type RFC2136 struct {
	// Server is the primary server's host:port.
	Server string
	// KeyName, Key (base64) and KeyAlg name the TSIG key; KeyAlg empty
	// means hmac-sha256.
	KeyName, Key, KeyAlg string
}

func (p *RFC2136) alg() string {
	if p.KeyAlg == "" {
		return dns.HmacSHA256
	}
	return dns.Fqdn(p.KeyAlg)
}

// AppendRecords adds recs to zone.
func (p *RFC2136) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return recs, p.update(ctx, zone, recs, false)
}

// DeleteRecords removes recs from zone.
func (p *RFC2136) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return recs, p.update(ctx, zone, recs, true)
}

func (p *RFC2136) update(ctx context.Context, zone string, recs []libdns.Record, remove bool) error {
	var rrs []dns.RR
	for _, r := range recs {
		rr, err := toDNS(r.RR(), zone)
		if err != nil {
			return err
		}
		rrs = append(rrs, rr)
	}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	if remove {
		m.Remove(rrs)
	} else {
		m.Insert(rrs)
	}
	keyName := dns.Fqdn(p.KeyName)
	m.SetTsig(keyName, p.alg(), 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{keyName: p.Key}, Timeout: 10 * time.Second}
	resp, _, err := c.ExchangeContext(ctx, m, p.Server)
	if err != nil {
		return fmt.Errorf("dns update at %s: %w", p.Server, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("dns update at %s: %s", p.Server, dns.RcodeToString[resp.Rcode])
	}
	return nil
}

// toDNS turns a libdns record into one of miekg/dns's; ACME needs TXT.
func toDNS(r libdns.RR, zone string) (dns.RR, error) {
	hdr := dns.RR_Header{Name: dns.Fqdn(libdns.AbsoluteName(r.Name, zone)), Class: dns.ClassINET, Ttl: uint32(r.TTL.Seconds())}
	if hdr.Ttl == 0 {
		hdr.Ttl = 60
	}
	if r.Type != "TXT" {
		return nil, errors.New("dns update: only TXT records are supported, got " + r.Type)
	}
	hdr.Rrtype = dns.TypeTXT
	var parts []string
	for s := r.Data; len(s) > 0; {
		n := min(len(s), 255)
		parts, s = append(parts, s[:n]), s[n:]
	}
	return &dns.TXT{Hdr: hdr, Txt: parts}, nil
}
