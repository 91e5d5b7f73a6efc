package console_test

import (
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestUploadReadOnlyForImporters: a members file is read (up to 32 MB) only from a
// principal who may import into the organisation of the address. Anyone else
// signed in, such as a client that has no organisation, is answered as before (the
// organisation is not found, the form refused) without its upload being read, as
// any other form is read no further than 64 KB: the upload cannot make hookd read
// and spool 32 MB for each request of someone who may not import, to the
// import's address or to any other ending in /members/import.
func TestUploadReadOnlyForImporters(t *testing.T) {
	e := newEnv(t)
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	const size = 30 << 20 // within the import's 32 MB
	for _, tt := range []struct {
		who, path string
		status    int
	}{
		{"a", "/console/organisations/" + id(e.orgA.ID) + "/members/import", http.StatusNotFound},
		{"staffB", "/console/organisations/" + id(e.orgA.ID) + "/members/import", http.StatusNotFound},
		{"a", "/console/webhooks/members/import", http.StatusForbidden},
		{"a", "/console/clients/members/import", http.StatusForbidden},
		{"staffB", "/console/inbox/members/import", http.StatusForbidden},
	} {
		t.Run(tt.who+" "+tt.path, func(t *testing.T) {
			is := is.New(t)
			u := e.as(t, tt.who)
			read, status := bigUpload(t, u, tt.path, size)
			is.Equal(status, tt.status)
			is.True(read < 16<<20) // the upload was not read through
		})
	}
	t.Run("staff of the organisation still import", func(t *testing.T) {
		is := is.New(t)
		u := e.as(t, "staffA")
		p := u.upload(t, "/console/organisations/"+id(e.orgA.ID)+"/members/import", nil, "file", "m.csv", "orcid\n"+memberA+"\n")
		is.Equal(p.status, http.StatusOK)
		is.True(strings.Contains(p.body, "0 updated, 1 unchanged")) // the member the env's world has, as it was
	})
}

// bigUpload posts a members file of n bytes with the user's CSRF token, and says
// how much of the body hookd read before it answered, and its status.
func bigUpload(t *testing.T, u *user, path string, n int64) (int64, int) {
	t.Helper()
	is := is.New(t)
	var head strings.Builder
	mw := multipart.NewWriter(&head)
	is.NoErr(mw.WriteField("csrf", u.csrf))
	_, err := mw.CreateFormFile("file", "m.csv")
	is.NoErr(err)
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	var read atomic.Int64
	body := io.MultiReader(strings.NewReader(head.String()), io.LimitReader(repeat('0'), n), strings.NewReader(tail))
	req, err := http.NewRequest(http.MethodPost, u.e.srv.URL+path, &counting{r: body, n: &read})
	is.NoErr(err)
	req.ContentLength = int64(head.Len()) + n + int64(len(tail))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := u.http.Do(req)
	is.NoErr(err)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	time.Sleep(100 * time.Millisecond) // the transport stops sending
	return read.Load(), res.StatusCode
}

// repeat is an endless reader of one byte.
type repeat byte

func (b repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// counting counts what is read of r.
type counting struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
