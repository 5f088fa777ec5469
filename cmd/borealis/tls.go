package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/internal/safefile"
)

// TLS on the endpoints: a given certificate (--tls-cert/--tls-key), else one generated once
// into the control plane's secrets directory and reused, else none (--tls off). Clients then
// get sslmode=require working out of the box; verify-full needs the given certificate or the
// generated one as sslrootcert.

// routerTLS returns the routers' TLS configuration and the certificate file, or nil when off.
func routerTLS(home, mode, certFile, keyFile, listenAddr string) (*tls.Config, string, error) {
	switch mode {
	case "", "auto":
	case "off":
		if certFile != "" {
			return nil, "", usagef("--tls off contradicts --tls-cert")
		}
		return nil, "", nil
	default:
		return nil, "", usagef("--tls must be auto or off, got %q", mode)
	}
	if (certFile == "") != (keyFile == "") {
		return nil, "", usagef("--tls-cert and --tls-key go together")
	}
	if certFile == "" {
		dir, err := cluster.SecretsDir(home)
		if err != nil {
			return nil, "", err
		}
		certFile, keyFile = filepath.Join(dir, "tls-cert.pem"), filepath.Join(dir, "tls-key.pem")
		if err := ensureCert(certFile, keyFile, listenAddr); err != nil {
			return nil, "", fmt.Errorf("generating the endpoints' TLS certificate: %w", err)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("loading the routers' TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certFile, nil
}

// ensureCert keeps a self-signed certificate for this host's loopback names (and the listen
// address), making a new one when it is missing or expires within a week.
func ensureCert(certFile, keyFile, listenAddr string) error {
	if data, err := safefile.ReadFile(certFile, 0o644); err == nil {
		if block, _ := pem.Decode(data); block != nil {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil && time.Until(c.NotAfter) > 7*24*time.Hour {
				if _, err := safefile.ReadFile(keyFile, 0o600); err == nil {
					return nil
				}
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "borealis endpoint"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		IsCA: true, BasicConstraintsValid: true}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	if ip := net.ParseIP(listenAddr); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := safefile.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return safefile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
