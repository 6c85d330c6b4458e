//go:build !unix

package admin

// checkDir has nothing to check where there are no unix permissions.
func checkDir(dir string) error { return nil }
