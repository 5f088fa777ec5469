package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadOrCreateToken returns the bearer token in path, creating the file (mode 0600, 32 random
// bytes in hex) when it does not exist. An existing file readable by others is refused.
func LoadOrCreateToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		token := hex.EncodeToString(raw[:])
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return "", fmt.Errorf("creating the API token file %s: %w", path, err)
		}
		defer f.Close()
		if _, err := f.WriteString(token + "\n"); err != nil {
			return "", err
		}
		return token, f.Sync()
	}
	if err != nil {
		return "", fmt.Errorf("reading the API token file %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the API token file %s has mode %04o: other users can read it (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	token := strings.TrimSpace(string(data))
	if len(token) < 32 {
		return "", fmt.Errorf("the API token file %s holds no usable token (delete it to get a new one)", path)
	}
	return token, nil
}
