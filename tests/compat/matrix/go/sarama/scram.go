package main

// A SCRAM client (RFC 5802, RFC 7677) for sarama, which leaves the SCRAM exchange to the
// application (sarama.SCRAMClient); written here so the matrix needs no further module.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

type scramClient struct {
	newHash         func() hash.Hash
	user, password  string
	nonce           string
	clientFirstBare string
	serverSignature []byte
	step            int
	done            bool
}

func newScramClient(mechanism string) *scramClient {
	if mechanism == "SCRAM-SHA-256" {
		return &scramClient{newHash: sha256.New}
	}
	return &scramClient{newHash: sha512.New}
}

func (c *scramClient) Begin(user, password, _ string) error {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	c.user, c.password, c.nonce = user, password, base64.RawStdEncoding.EncodeToString(raw)
	c.step, c.done = 0, false
	return nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
		c.clientFirstBare = "n=" + name + ",r=" + c.nonce
		return "n,," + c.clientFirstBare, nil
	case 2:
		attrs := map[string]string{}
		for _, part := range strings.Split(challenge, ",") {
			if k, v, ok := strings.Cut(part, "="); ok {
				attrs[k] = v
			}
		}
		if !strings.HasPrefix(attrs["r"], c.nonce) {
			return "", fmt.Errorf("server nonce does not extend the client's")
		}
		salt, err := base64.StdEncoding.DecodeString(attrs["s"])
		if err != nil {
			return "", fmt.Errorf("bad salt: %w", err)
		}
		iterations, err := strconv.Atoi(attrs["i"])
		if err != nil || iterations < 1 {
			return "", fmt.Errorf("bad iteration count %q", attrs["i"])
		}
		salted, err := pbkdf2.Key(c.newHash, c.password, salt, iterations, c.newHash().Size())
		if err != nil {
			return "", err
		}
		clientKey := c.hmac(salted, "Client Key")
		h := c.newHash()
		h.Write(clientKey)
		storedKey := h.Sum(nil)
		withoutProof := "c=biws,r=" + attrs["r"]
		authMessage := c.clientFirstBare + "," + challenge + "," + withoutProof
		proof := c.hmac(storedKey, authMessage)
		for i := range proof {
			proof[i] ^= clientKey[i]
		}
		c.serverSignature = c.hmac(c.hmac(salted, "Server Key"), authMessage)
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
	default:
		want := "v=" + base64.StdEncoding.EncodeToString(c.serverSignature)
		if challenge != want {
			return "", fmt.Errorf("server signature does not match")
		}
		c.done = true
		return "", nil
	}
}

func (c *scramClient) Done() bool { return c.done }
