package config

import "path/filepath"

// KeyPath is the key store's path: key_file, or "keys" in state_dir.
func (c *Config) KeyPath() string {
	if c.KeyFile != "" {
		return c.KeyFile
	}
	return filepath.Join(c.StateDir, "keys")
}

// SessionSecretPath is the file holding the secret that signs the login
// page's session cookies, in state_dir.
func (c *Config) SessionSecretPath() string { return filepath.Join(c.StateDir, "session.key") }
