package auth

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Check reads the store as a start would and writes what it holds to w,
// as `oneport check` prints it. A store that does not parse is an error;
// one this user may not read is only mentioned on w.
func (s Store) Check(w io.Writer) error {
	keys, err := s.Load()
	switch {
	case errors.Is(err, fs.ErrPermission):
		fmt.Fprintf(w, "keys: %s is not readable by this user; not checked\n", s.Path)
	case err != nil:
		return err
	case len(keys) > 0:
		fmt.Fprintf(w, "keys: %d in %s; every HTTP request needs one unless its route sets auth = \"none\"\n", len(keys), s.Path)
	}
	return nil
}
