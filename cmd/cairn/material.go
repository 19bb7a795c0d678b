package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/node"
)

// clusterMaterial is where a whole cluster's security material goes: a CA
// and user root's client certificate (what the CLI uses), a gossip key,
// and per node its certificate and its own copy of the gossip key file
// (each node rewrites its own when the keyring changes).
type clusterMaterial struct {
	caDir       string
	gossipKeys  string
	nodeDir     func(name string) string
	nodeKeyFile func(name string) string
}

// make creates what is missing, keeping whatever an earlier run made; a
// node certificate signed by a CA that is gone is made again. hosts are
// the names and IPs each node's certificate is valid for besides the
// loopback ones.
func (m clusterMaterial) make(nodes []string, hosts map[string][]string) error {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	newCA := !exists(filepath.Join(m.caDir, certs.CAFile))
	if newCA {
		if err := certs.CreateCA(certs.Options{Dir: m.caDir}); err != nil {
			return err
		}
	}
	if crt, _ := certs.ClientFiles("root"); newCA || !exists(filepath.Join(m.caDir, crt)) {
		if err := certs.CreateClient(certs.Options{Dir: m.caDir, Overwrite: true}, "root"); err != nil {
			return err
		}
	}
	if !exists(m.gossipKeys) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(m.gossipKeys), 0o755); err != nil {
			return err
		}
		if err := node.WriteGossipKeyFile(m.gossipKeys, []string{base64.StdEncoding.EncodeToString(key)}); err != nil {
			return err
		}
	}
	for _, name := range nodes {
		dir := m.nodeDir(name)
		if newCA {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
		if !exists(filepath.Join(dir, certs.NodeCert)) {
			if err := certs.CreateNode(certs.Options{Dir: dir, CADir: m.caDir}, name, hosts[name]); err != nil {
				return err
			}
		}
		own := m.nodeKeyFile(name)
		if !exists(own) {
			raw, err := os.ReadFile(m.gossipKeys)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(own, raw, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// forget removes everything make made for nodes.
func (m clusterMaterial) forget(nodes []string) error {
	paths := []string{m.caDir, m.gossipKeys}
	for _, name := range nodes {
		paths = append(paths, m.nodeDir(name), m.nodeKeyFile(name))
	}
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}
