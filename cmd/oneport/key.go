package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oneport/oneport/internal/admin"
	"github.com/oneport/oneport/internal/auth"
	"github.com/oneport/oneport/internal/config"
)

const keyUsage = `usage: oneport key add NAME [--routes R,...] [--models M,...] [--rate N/min] [--concurrency N] [--expires DATE] [--admin]
       oneport key ls
       oneport key rm NAME
  (each takes --admin-socket PATH, and --config FILE or --key-file PATH for when no oneport runs)`

// runKey is oneport key add|ls|rm: through the admin API of the running
// oneport, so changes apply at once, or on the key file when none runs.
func runKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keyUsage)
		return 2
	}
	var spec auth.Spec
	var routes, models, rate, expires, cfgPath, keyFile string
	fl, client, err := clientFlags("oneport key", args[1:], func(fl *flag.FlagSet) {
		fl.StringVar(&routes, "routes", "", "")
		fl.StringVar(&models, "models", "", "")
		fl.StringVar(&rate, "rate", "", "")
		fl.IntVar(&spec.Concurrency, "concurrency", 0, "")
		fl.StringVar(&expires, "expires", "", "")
		fl.BoolVar(&spec.Admin, "admin", false, "")
		fl.StringVar(&cfgPath, "config", "", "")
		fl.StringVar(&keyFile, "key-file", "", "")
	})
	if err == nil {
		err = keySpec(&spec, routes, models, rate, expires)
	}
	if err != nil {
		fmt.Fprintf(stderr, "oneport key: %v\n%s\n", err, keyUsage)
		return 2
	}
	op := keyOp{client: client, stdout: stdout, stderr: stderr, file: func() (string, error) { return keyPath(cfgPath, keyFile) }}
	switch {
	case args[0] == "add" && fl.NArg() == 1:
		spec.Name = fl.Arg(0)
		return op.add(spec)
	case args[0] == "ls" && fl.NArg() == 0:
		return op.ls()
	case args[0] == "rm" && fl.NArg() == 1:
		return op.rm(fl.Arg(0))
	}
	fmt.Fprintln(stderr, keyUsage)
	return 2
}

func keySpec(spec *auth.Spec, routes, models, rate, expires string) error {
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
		t, err := auth.ParseExpiry(expires, time.Now())
		if err != nil {
			return err
		}
		spec.Expires = t
	}
	return nil
}

// keyPath is the key file a CLI edit without a running oneport uses.
func keyPath(cfgPath, keyFile string) (string, error) {
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

type keyOp struct {
	client         *admin.Client
	stdout, stderr io.Writer
	file           func() (string, error)
}

// offline reports whether err says no oneport answers on the admin
// socket, so the file is to be edited directly.
func offline(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (o keyOp) add(spec auth.Spec) int {
	var nk admin.NewKey
	err := o.client.Call("POST", "/keys", spec, &nk)
	if offline(err) {
		err = o.direct(func(keys []auth.Key) ([]auth.Key, error) {
			var err error
			keys, nk.Key, err = auth.Add(keys, spec, time.Now())
			nk.Name = spec.Name
			return keys, err
		})
	}
	if err != nil {
		fmt.Fprintln(o.stderr, "oneport key add:", err)
		return 1
	}
	fmt.Fprintf(o.stderr, "key %q made; it is shown this once, so keep it now:\n", nk.Name)
	fmt.Fprintln(o.stdout, nk.Key)
	return 0
}

func (o keyOp) rm(name string) int {
	err := o.client.Call("DELETE", "/keys/"+url.PathEscape(name), nil, nil)
	if offline(err) {
		err = o.direct(func(keys []auth.Key) ([]auth.Key, error) { return auth.Remove(keys, name) })
	}
	if err != nil {
		fmt.Fprintln(o.stderr, "oneport key rm:", err)
		return 1
	}
	fmt.Fprintf(o.stderr, "key %q removed\n", name)
	return 0
}

func (o keyOp) ls() int {
	var keys []auth.KeyStatus
	err := o.client.Call("GET", "/keys", nil, &keys)
	if offline(err) {
		err = o.direct(func(ks []auth.Key) ([]auth.Key, error) {
			for _, k := range ks {
				keys = append(keys, auth.StatusOf(k))
			}
			return nil, nil
		})
	}
	if err != nil {
		fmt.Fprintln(o.stderr, "oneport key ls:", err)
		return 1
	}
	printKeys(o.stdout, keys)
	return 0
}

// direct applies f to the key file; f returning nil keys changes nothing.
func (o keyOp) direct(f func([]auth.Key) ([]auth.Key, error)) error {
	path, err := o.file()
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
	fmt.Fprintf(o.stderr, "no oneport answered on %s; wrote %s (a running oneport reads it on reload)\n", o.client.Socket, path)
	return nil
}

func printKeys(w io.Writer, keys []auth.KeyStatus) {
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
