//go:build tools

// Package tools keeps etcd and etcdctl in this wrapper module's build list.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
