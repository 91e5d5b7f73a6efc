package store

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzInboxWithoutSecrets reads any request as the inbox records and shows it:
// whatever its Content-Type, query and body (anyone may post into an inbox), the
// reading ends without a panic, and a token sent first in the query, or first in
// a form body, a session first in the path's parameters, a token first in the
// query of a Link header's URL, and an Authorization's credential after its
// first word, are not kept. A Content-Type with bytes a lower-cased copy
// lengthens once made the reading panic, dropping the connection and failing
// every hookd inbox list after it.
func FuzzInboxWithoutSecrets(f *testing.F) {
	for _, s := range []struct{ ct, query, body string }{
		{"application/x-www-form-urlencoded", "a=1;b=2", "x=1&y=2"},
		{"multipart/form-data; boundary=b", "%74oken%zz=1", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n"},
		{"multipart/form-data; x=\xff; boundary=b", "", "--b\rContent-Disposition: form-data;\r\n name=\"a\"\r\r1\r--b--\r"},
		{"multipart/mixed", "", "--c\nContent-Type: multipart/mixed; boundary=d\n\n--d\nContent-Disposition: form-data; name=\"a\"\n\n1\n--d--\n--c--\n"},
		{"application/x-www-form-urlencoded, text/plain", "", `{"session_id":"x"}`},
		{"multipart/form-data; boundary=\u212a", "", "--\u212a\r\nX\r\n\r\n--\u212a--"},
		{"application/x-www-form-urlencoded", "api.key=1&api+key=2&api%20key=3", "api[key=4&x.y=5"},
		{"text/plain", "a=1/;token=2;b;%74oken=\"3/4\"", ""},
		{"text/plain", "abc123", ""},
		{"text/plain", "AWS4-HMAC-SHA256 Credential=a/b, Signature=c", ""},
		{"text/plain", "a=1>; rel=\"next\", <https://x/;jsessionid=2?token=3#x?token=4", "; session=\"5 6\"; u=\"https://x/?token=7\""},
	} {
		f.Add(s.ct, s.query, []byte(s.body))
	}
	const secret = "SECRETQ1"
	f.Fuzz(func(t *testing.T, ct, query string, body []byte) {
		r := withoutSecrets(InboxRequest{
			Path:  "/inbox/a/x;jsessionid=" + secret + ";" + query,
			Query: "token=" + secret + "&" + query,
			Header: []HeaderField{{Name: "Content-Type", Value: ct}, {Name: "Referer", Value: "https://x/?" + query},
				{Name: "Link", Value: "<https://x/?access_token=" + secret + "&" + query + `>; rel="next"`},
				{Name: "Authorization", Value: query + " " + secret}},
			Body: body,
		})
		if !strings.Contains(query, secret) && strings.Contains(r.Query, secret) {
			t.Fatalf("query %q kept its token: %q", "token="+secret+"&"+query, r.Query)
		}
		if !strings.Contains(query, secret) && strings.Contains(r.Path, secret) {
			t.Fatalf("path kept its session: %q", r.Path)
		}
		if auth := r.HeaderValue("Authorization"); !strings.Contains(query, secret) && strings.Contains(auth, secret) {
			t.Fatalf("Authorization kept its credential: %q", auth)
		}
		if link := r.HeaderValue("Link"); !strings.Contains(query, secret) && strings.Contains(link, secret) {
			t.Fatalf("Link kept its token: %q", link)
		}
		if mt, _ := mediaType(ct); mt == "application/x-www-form-urlencoded" && !strings.Contains(ct, ",") {
			form := withoutSecrets(InboxRequest{
				Header: []HeaderField{{Name: "Content-Type", Value: ct}},
				Body:   append([]byte("password="+secret+"&"), body...),
			})
			if !bytes.Contains(body, []byte(secret)) && bytes.Contains(form.Body, []byte(secret)) {
				t.Fatalf("form body kept its password: %q", form.Body)
			}
		}
	})
}
