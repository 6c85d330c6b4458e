package admin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/config"
)

// KeyEditor changes API keys through the admin API of the running
// oneport, so changes apply at once, or in the key file when no oneport
// answers on the socket. Its zero value is not usable: Client and File
// are needed.
type KeyEditor struct {
	Client *Client
	// File returns the key file to edit when no oneport answers; it is
	// called only then.
	File func() (string, error)
	// Notice, if not nil, gets one line when the file was written
	// directly.
	Notice io.Writer
}

// offline reports whether err says no oneport answers on the admin
// socket, so the file is to be edited directly.
func offline(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Add makes the key spec describes and returns it with its secret.
func (e KeyEditor) Add(spec auth.Spec) (NewKey, error) {
	var nk NewKey
	err := e.Client.Call("POST", "/keys", spec, &nk)
	if offline(err) {
		err = e.direct(func(keys []auth.Key) ([]auth.Key, error) {
			var err error
			keys, nk.Key, err = auth.Add(keys, spec, time.Now())
			nk.Name = spec.Name
			return keys, err
		})
	}
	return nk, err
}

// Remove deletes the key called name.
func (e KeyEditor) Remove(name string) error {
	err := e.Client.Call("DELETE", "/keys/"+url.PathEscape(name), nil, nil)
	if offline(err) {
		err = e.direct(func(keys []auth.Key) ([]auth.Key, error) { return auth.Remove(keys, name) })
	}
	return err
}

// List returns the keys with their use, never their secrets.
func (e KeyEditor) List() ([]auth.KeyStatus, error) {
	var keys []auth.KeyStatus
	err := e.Client.Call("GET", "/keys", nil, &keys)
	if offline(err) {
		err = e.direct(func(ks []auth.Key) ([]auth.Key, error) {
			for _, k := range ks {
				keys = append(keys, auth.StatusOf(k))
			}
			return nil, nil
		})
	}
	return keys, err
}

// direct applies f to the key file; f returning nil keys changes nothing.
func (e KeyEditor) direct(f func([]auth.Key) ([]auth.Key, error)) error {
	path, err := e.File()
	if err != nil {
		return err
	}
	st := auth.Store{Path: path}
	keys, err := st.Load()
	if err != nil {
		return err
	}
	next, err := f(keys)
	if err != nil || next == nil {
		return err
	}
	if err := st.Save(next); err != nil {
		return err
	}
	if e.Notice != nil {
		fmt.Fprintf(e.Notice, "no oneport answered on %s; wrote %s (a running oneport reads it on reload)\n", e.Client.Socket, path)
	}
	return nil
}

// KeySpec fills spec from the command line's --routes, --models, --rate
// and --expires values; an empty value leaves its field alone.
func KeySpec(spec *auth.Spec, routes, models, rate, expires string, now time.Time) error {
	if routes != "" {
		spec.Routes = strings.Split(routes, ",")
	}
	if models != "" {
		spec.Models = strings.Split(models, ",")
	}
	if rate != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(rate, "/min"))
		if err != nil || n < 1 {
			return fmt.Errorf("--rate %q: want requests per minute, such as 60/min", rate)
		}
		spec.Rate = n
	}
	if expires != "" {
		t, err := auth.ParseExpiry(expires, now)
		if err != nil {
			return err
		}
		spec.Expires = t
	}
	return nil
}

// KeyFile is the key file an edit without a running oneport uses: keyFile
// if set, else the one the config at cfgPath (or the defaults when
// cfgPath is empty) names.
func KeyFile(cfgPath, keyFile string) (string, error) {
	if keyFile != "" {
		return keyFile, nil
	}
	cfg := &config.Config{}
	if cfgPath != "" {
		var err error
		if cfg, err = config.Load(cfgPath); err != nil {
			return "", err
		}
	}
	cfg.Defaults()
	return cfg.KeyPath(), nil
}

// WriteKeys writes keys as the table `oneport key ls` prints.
func WriteKeys(w io.Writer, keys []auth.KeyStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROUTES\tMODELS\tLIMITS\tADMIN\tCREATED\tEXPIRES\tLAST USE\tREQUESTS")
	for _, k := range keys {
		limits := []string{}
		if k.Rate > 0 {
			limits = append(limits, fmt.Sprintf("%d/min", k.Rate))
		}
		if k.Concurrency > 0 {
			limits = append(limits, fmt.Sprintf("%d at once", k.Concurrency))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\t%d\n", k.Name, orAll(k.Routes), orAll(k.Models),
			orDash(strings.Join(limits, ", ")), k.Admin, day(k.Created), day(k.Expires), day(k.LastUsed), k.Requests)
	}
	tw.Flush()
}

func orAll(l []string) string {
	if len(l) == 0 {
		return "all"
	}
	return strings.Join(l, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
