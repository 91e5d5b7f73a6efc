package membercsv_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"hookd/membercsv"
	"hookd/store"
)

// FuzzParse reads any bytes as a member file: Parse never panics; it refuses a file
// with an invalid error, or returns rows whose iDs and e-mails hold, each iD once,
// and rejected rows with a line and a reason. Seeds: testdata/members.csv, and
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	good, err := os.ReadFile("testdata/members.csv")
	if err != nil {
		f.Fatalf("read the seed file: %v", err)
	}
	for _, s := range []string{string(good), "", "orcid\n", "orcid,name\n0000-0002-7253-3645,\"Ann\n", "\ufefforcid id;name\n", "orcid;name\n0000-0002-7253-3645;Doe, Ann\n", "orcid\tname\n0000-0002-7253-3645\t\t\n", "\xff\xfeo\x00",
		"orcid,orcid\n", "name\nAnn\n", "ORCID,Email\nhttps://orcid.org/0000-0002-7253-3645,ann@uni.example\n0000-0002-7253-3645,x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := membercsv.Parse(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) || err.Error() == "" {
				t.Fatalf("Parse(%q): error %v is not an invalid file that says why", data, err)
			}
			if len(file.Rows) > 0 || len(file.Rejected) > 0 {
				t.Fatalf("Parse(%q) refused the file but returned rows", data)
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range file.Rows {
			if err := store.CheckMember(r.Orcid, r.Info); err != nil {
				t.Fatalf("Parse(%q) took a row that does not hold: %v", data, err)
			}
			if seen[r.Orcid] {
				t.Fatalf("Parse(%q) took %s twice", data, r.Orcid)
			}
			seen[r.Orcid] = true
		}
		for _, r := range file.Rejected {
			if r.Line < 2 || r.Reason == "" {
				t.Fatalf("Parse(%q) rejected a row without its line or a reason: %+v", data, r)
			}
		}
		if n := len(file.Rows) + len(file.Rejected); n > strings.Count(string(data), "\n")+1 {
			t.Fatalf("Parse(%q): %d rows from %d lines", data, n, strings.Count(string(data), "\n")+1)
		}
	})
}
