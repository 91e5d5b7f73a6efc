// Command receiver is the smallest receiver of hookd's callbacks, for the README's
// walk-through: it prints each request's method and path and answers 204 No Content.
//
//	go run ./testdata/receiver 127.0.0.1:9000
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:9000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	log.SetFlags(0)
	log.Printf("receiving on http://%s", addr)
	log.Fatal(http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		fmt.Printf("%s %s webhook-id=%s\n", r.Method, r.URL.Path, r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})))
}
