// A Redis for Argo CD's controllers in the GitOps install test: miniredis, the in-memory Redis that Argo CD's
// own core mode runs, already in Argo CD's module graph. hack/build-controlplane.sh builds it inside the
// wrapper module it generates for Argo CD; usage: redis 127.0.0.1:PORT
package main

import (
	"log"
	"os"

	"github.com/alicebob/miniredis/v2"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: redis HOST:PORT")
	}
	server := miniredis.NewMiniRedis()
	if err := server.StartAddr(os.Args[1]); err != nil {
		log.Fatal(err)
	}
	select {} // serve until killed
}
