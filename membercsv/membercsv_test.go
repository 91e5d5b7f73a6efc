package membercsv_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/membercsv"
	"hookd/orcid"
	"hookd/store"
)

// memberOrcid returns the i-th of a series of valid iDs.
func memberOrcid(i int) string {
	base := fmt.Sprintf("000000010%06d", i)
	id := base + string(orcid.CheckDigit(base))
	return id[0:4] + "-" + id[4:8] + "-" + id[8:12] + "-" + id[12:16]
}

func TestParse(t *testing.T) {
	is := is.New(t)
	var b strings.Builder
	b.WriteString("\ufeffORCID iD,Name,E-mail,eppn\n")
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&b, "%s,Person %d,p%d@uni.example,p%d@uni\n", memberOrcid(i), i, i, i)
	}
	b.WriteString("0000-0002-7253-3646,Bad Sum,bad@uni.example,\n")   // line 3002
	b.WriteString(memberOrcid(5) + ",Twice,t@uni.example,t\n")        // line 3003
	b.WriteString(memberOrcid(9001) + ",Short\n")                     // line 3004
	b.WriteString(memberOrcid(9002) + ",Bad Mail,nope,\n")            // line 3005
	b.WriteString("\n")                                               // a blank line
	b.WriteString("https://orcid.org/" + memberOrcid(9003) + ",,,\n") // line 3007: a URL, empty fields

	f, err := membercsv.Parse(strings.NewReader(b.String()))
	is.NoErr(err)
	is.Equal(len(f.Rows), 3001) // every good row
	is.Equal(f.Rows[0].Orcid, memberOrcid(1))
	is.Equal(*f.Rows[0].Info.Name, "Person 1")
	is.Equal(*f.Rows[0].Info.Email, "p1@uni.example") // "E-mail" is the email column
	is.Equal(f.Rows[3000].Orcid, memberOrcid(9003))   // an iD written as its URL
	is.Equal(*f.Rows[3000].Info.Name, "")             // a given empty field is empty, not absent
	is.Equal(len(f.Rejected), 4)
	for i, want := range []struct {
		line          int
		orcid, reason string
	}{
		{3002, "0000-0002-7253-3646", "orcid: ORCID iD \"0000-0002-7253-3646\" has a wrong check digit"},
		{3003, memberOrcid(5), "duplicate: " + memberOrcid(5) + " is already on line 6"},
		{3004, memberOrcid(9001), "has 2 columns, the header 4"},
		{3005, memberOrcid(9002), "email: \"nope\" is not an e-mail address"},
	} {
		is.Equal(f.Rejected[i].Line, want.line)                      // the line of the file
		is.Equal(f.Rejected[i].Orcid, want.orcid)                    // the iD as written
		is.True(strings.Contains(f.Rejected[i].Reason, want.reason)) // and why, in plain words
	}

	t.Run("missing columns are left alone", func(t *testing.T) {
		is := is.New(t)
		f, err := membercsv.Parse(strings.NewReader("orcid\n" + memberOrcid(1) + "\n"))
		is.NoErr(err)
		is.Equal(len(f.Rows), 1)
		is.True(f.Rows[0].Info.Name == nil && f.Rows[0].Info.Email == nil && f.Rows[0].Info.EPPN == nil) // not cleared on import
	})
}

// TestUnnamedEmptyColumns: columns a spreadsheet adds with an empty heading
// ("orcid,name,,") are left out while their cells are empty; a row with a value
// there is rejected, saying which column, rather than the value being dropped.
func TestUnnamedEmptyColumns(t *testing.T) {
	is := is.New(t)
	f, err := membercsv.Parse(strings.NewReader("orcid,name,,\n" + memberOrcid(1) + ",Ann,,\n" + memberOrcid(2) + ",Bob,,bob@uni.example\n"))
	is.NoErr(err)            // not an unknown column ""
	is.Equal(len(f.Rows), 1) // Ann
	is.Equal(*f.Rows[0].Info.Name, "Ann")
	is.Equal(len(f.Rejected), 1) // Bob's e-mail is in a column without a name
	is.Equal(f.Rejected[0].Line, 3)
	is.Equal(f.Rejected[0].Reason, "column 4 has a value, but the header names no column 4")
}

// TestOneColumnRowInTheSingular: a row of one column is said to have "1 column".
func TestOneColumnRowInTheSingular(t *testing.T) {
	is := is.New(t)
	f, err := membercsv.Parse(strings.NewReader("orcid,name\n" + memberOrcid(1) + "\n"))
	is.NoErr(err)
	is.Equal(len(f.Rejected), 1)                                 // the short row
	is.Equal(f.Rejected[0].Reason, "has 1 column, the header 2") // in the singular
}

func TestParseBadFiles(t *testing.T) {
	for _, tt := range []struct{ name, file, want string }{
		{"empty", "", "the file is empty"},
		{"no orcid column", "name,email\nAnn,a@b.example\n", "no orcid column"},
		{"unknown column", "orcid,colour\n", `unknown column "colour"`},
		{"no header", "0000-0002-1825-0097,Josiah\n0000-0001-5109-3700,Ann\n", "line 1 is a member (0000-0002-1825-0097), not a header: the first line names the columns"},
		{"column twice", "orcid,mail,email\n", `column "email" appears twice`},
		{"not CSV", "orcid\n\"unterminated\n", "line"},
		{"UTF-16, little-endian", "\xff\xfeo\x00r\x00c\x00i\x00d\x00\n\x00", "the file is UTF-16"},
		{"UTF-16, big-endian", "\xfe\xff\x00o\x00r\x00c\x00i\x00d\x00\n", "save it as CSV in UTF-8"},
		{"UTF-16 without its mark, little-endian", "o\x00r\x00c\x00i\x00d\x00\n\x00", "the file is UTF-16"},
		{"UTF-16 without its mark, big-endian", "\x00o\x00r\x00c\x00i\x00d\x00\n", "the file is UTF-16"},
		{"Windows-1252, an accent in a name", "orcid,name\n0000-0002-1825-0097,Ann\n0000-0001-5109-3700,Jos\xe9\n", "line 3 is not UTF-8"},
		{"an .xlsx workbook", "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml", "a spreadsheet workbook (.xlsx or .ods), not CSV"},
		{"Windows-1252, an accent in the header", "orcid,n\xe4me\n", "line 1 is not UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			f, err := membercsv.Parse(strings.NewReader(tt.file))
			is.True(errors.Is(err, store.ErrInvalid))       // a bad file is refused
			is.True(strings.Contains(err.Error(), tt.want)) // saying why
			is.Equal(len(f.Rows)+len(f.Rejected), 0)        // and gives nothing to import
		})
	}
}

// TestBOMBeforeQuotedHeader: a file with a byte-order mark and every field quoted
// (Python's csv with utf-8-sig and QUOTE_ALL, LibreOffice's "quote all text
// cells") is read: the mark does not make the header's first quote a bare one.
func TestBOMBeforeQuotedHeader(t *testing.T) {
	f, err := membercsv.Parse(strings.NewReader("\ufeff\"orcid\",\"name\"\r\n\"0000-0002-1825-0097\",\"Ann\"\r\n"))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if len(f.Rows) != 1 || f.Rows[0].Orcid != "0000-0002-1825-0097" || f.Rows[0].Info.Name == nil || *f.Rows[0].Info.Name != "Ann" {
		t.Fatalf("rows: %+v", f.Rows)
	}
}

// TestRowsOfEmptyCells: a row of empty cells, as a spreadsheet writes after the
// last one filled in (",,,"), is a blank line, not a rejected row.
func TestRowsOfEmptyCells(t *testing.T) {
	f, err := membercsv.Parse(strings.NewReader("orcid,name,email\r\n0000-0002-1825-0097,Ann,\r\n,,\r\n , ,\r\n"))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if len(f.Rows) != 1 || len(f.Rejected) != 0 {
		t.Fatalf("rows %+v, rejected %+v", f.Rows, f.Rejected)
	}
}

// TestLineBreakInAName: a quoted cell may hold a line break; a name or eppn with
// one is a rejected row (names go into e-mails, one line each), on the line the
// row starts.
func TestLineBreakInAName(t *testing.T) {
	f, err := membercsv.Parse(strings.NewReader("orcid,name,eppn\r\n0000-0002-1825-0097,\"Ann\r\nRecord: https://evil.example/\",\r\n0000-0002-7253-3645,Bo,\"bo\nx\"\r\n0000-0001-5109-3700,Cy,cy@uni\r\n"))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if len(f.Rows) != 1 || f.Rows[0].Orcid != "0000-0001-5109-3700" {
		t.Fatalf("rows: %+v", f.Rows)
	}
	if len(f.Rejected) != 2 || f.Rejected[0].Line != 2 || !strings.Contains(f.Rejected[0].Reason, "name: has a line break") ||
		f.Rejected[1].Line != 4 || !strings.Contains(f.Rejected[1].Reason, "eppn: has a line break") {
		t.Fatalf("rejected: %+v", f.Rejected)
	}
}

// TestSeparators: a header line without a comma but with semicolons (a spreadsheet
// whose decimal mark is a comma saves CSV so) or tabs gives the file's separator; a
// cell may then hold a comma.
func TestSeparators(t *testing.T) {
	for _, tt := range []struct{ name, file string }{
		{"semicolons", "\ufefforcid;name;email\r\n0000-0002-1825-0097;Doe, Ann;ann@uni.example\r\n0000-0002-7253-3645;;\r\n"},
		{"tabs", "ORCID iD\tName\tE-mail\n0000-0002-1825-0097\tDoe, Ann\tann@uni.example\n0000-0002-7253-3645\t\t\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			f, err := membercsv.Parse(strings.NewReader(tt.file))
			is.NoErr(err)
			is.Equal(len(f.Rejected), 0)
			is.Equal(len(f.Rows), 2)
			is.Equal(*f.Rows[0].Info.Name, "Doe, Ann") // the comma is the name's
			is.Equal(*f.Rows[0].Info.Email, "ann@uni.example")
			is.Equal(f.Rows[1].Orcid, "0000-0002-7253-3645")
			is.Equal(*f.Rows[1].Info.Name, "") // empty fields stay fields
		})
	}
	t.Run("a comma in the header wins", func(t *testing.T) {
		is := is.New(t)
		_, err := membercsv.Parse(strings.NewReader("orcid,name;email\n"))
		is.True(errors.Is(err, store.ErrInvalid))
		is.True(strings.Contains(err.Error(), `unknown column "name;email"`))
	})
}
