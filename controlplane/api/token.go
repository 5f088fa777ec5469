package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/borealisdb/borealis/internal/safefile"
)

// LoadOrCreateToken returns the bearer token in path, creating the file (mode 0600, 32 random
// bytes in hex) when it does not exist. An existing file that is a link, is owned by another
// user, or is readable by others is refused.
func LoadOrCreateToken(path string) (string, error) {
	data, err := safefile.ReadFile(path, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		token := hex.EncodeToString(raw[:])
		if err := safefile.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("creating the API token file %s: %w", path, err)
		}
		return token, nil
	}
	if err != nil {
		return "", fmt.Errorf("the API token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if len(token) < 32 {
		return "", fmt.Errorf("the API token file %s holds no usable token (delete it to get a new one)", path)
	}
	return token, nil
}
