package scenario

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// Security is the connection's security from the KAFSCALE_MATRIX_SECURITY_* environment
// (tests/compat/matrix/README.md, "Security"). The zero value is PLAINTEXT.
type Security struct {
	Protocol  string
	Mechanism string
	User      string
	Password  string
	// TLS is set for SSL and SASL_SSL: the CA of KAFSCALE_MATRIX_SSL_CA_FILE as the only root,
	// and the client certificate of KAFSCALE_MATRIX_SSL_CERT_FILE/_KEY_FILE when set (mTLS).
	TLS *tls.Config
}

// SASL reports whether the protocol logs in with SASL.
func (s Security) SASL() bool { return strings.HasPrefix(s.Protocol, "SASL_") }

// SecurityFromEnv reads the environment; a CA file that cannot be read or parsed is an error.
func SecurityFromEnv() (Security, error) {
	s := Security{
		Protocol:  os.Getenv("KAFSCALE_MATRIX_SECURITY_PROTOCOL"),
		Mechanism: os.Getenv("KAFSCALE_MATRIX_SASL_MECHANISM"),
		User:      os.Getenv("KAFSCALE_MATRIX_SASL_USERNAME"),
		Password:  os.Getenv("KAFSCALE_MATRIX_SASL_PASSWORD"),
	}
	if s.Protocol == "" {
		s.Protocol = "PLAINTEXT"
	}
	if s.Mechanism == "" {
		s.Mechanism = "PLAIN"
	}
	if s.Protocol != "SSL" && s.Protocol != "SASL_SSL" {
		return s, nil
	}
	s.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if file := os.Getenv("KAFSCALE_MATRIX_SSL_CA_FILE"); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return s, fmt.Errorf("cannot read KAFSCALE_MATRIX_SSL_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return s, fmt.Errorf("no certificate in KAFSCALE_MATRIX_SSL_CA_FILE %q", file)
		}
		s.TLS.RootCAs = pool
	}
	cert, key := os.Getenv("KAFSCALE_MATRIX_SSL_CERT_FILE"), os.Getenv("KAFSCALE_MATRIX_SSL_KEY_FILE")
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return s, fmt.Errorf("cannot load KAFSCALE_MATRIX_SSL_CERT_FILE/_KEY_FILE: %w", err)
		}
		s.TLS.Certificates = []tls.Certificate{pair}
	}
	return s, nil
}
