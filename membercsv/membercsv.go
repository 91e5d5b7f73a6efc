// Package membercsv reads an organisation's member list from a CSV file: a header
// line naming the columns (orcid, and optionally name, email, eppn, in any order and
// case), then one member a line. It is input handling, shared by the command line and
// any other front that takes such a file; store.ImportMembers takes the rows it reads.
package membercsv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"hookd/orcid"
	"hookd/store"
)

// MaxRows bounds one file, so a wrong file cannot hold the database's writer for long.
const MaxRows = 200000

// Rejected is a row that was not taken, and why.
type Rejected struct {
	Line   int    // line of the file, 1 for the header
	Orcid  string // as written in the file
	Reason string
}

// File is what Parse read: the rows to import and the rows it rejected.
type File struct {
	Rows     []store.MemberRow
	Rejected []Rejected
}

// columnNames maps the header names Parse knows (lower case) to their column.
var columnNames = map[string]string{
	"orcid": "orcid", "orcid id": "orcid", "orcid_id": "orcid", "orcidid": "orcid", "orcid-id": "orcid",
	"name": "name", "email": "email", "e-mail": "email", "mail": "email", "eppn": "eppn",
}

// Parse reads a member CSV file. A column with an empty heading is left out (its
// cells must be empty). A row with a bad iD, a bad e-mail, a wrong number of
// columns, a value in an unnamed column or an iD already given earlier in the file
// is rejected (and listed with its line); the others are returned in file order. A file that cannot be read as such
// a CSV, or that is not in UTF-8, is an error (a *store.Error of code invalid), and
// nothing of it is returned.
func Parse(r io.Reader) (File, error) {
	// A byte-order mark (Excel's and Python's utf-8-sig files) goes before the CSV
	// reader sees it: before a quoted header it would make the quote a bare one.
	br := bufio.NewReaderSize(r, headerPeek)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	if b, _ := br.Peek(2); len(b) == 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff || (b[0] == 0) != (b[1] == 0)) {
		// With its byte-order mark, or without: a header's first character, ASCII
		// in UTF-16, has a zero byte beside it, which no CSV file in UTF-8 has.
		return File{}, invalid("the file is UTF-16 (a spreadsheet's \"Unicode text\"); save it as CSV in UTF-8")
	}
	if b, _ := br.Peek(4); string(b) == "PK\x03\x04" {
		// A ZIP archive: an .xlsx or .ods workbook, chosen in place of its CSV.
		return File{}, invalid("the file is a spreadsheet workbook (.xlsx or .ods), not CSV; save it as \"CSV UTF-8\" and import that")
	}
	cr := csv.NewReader(br)
	cr.Comma = separator(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = cr.Comma != '\t' // else it would take an empty field's tab as a space
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return File{}, invalid("the file is empty; it needs a header line naming the columns (orcid,name,email,eppn)")
	}
	if err != nil {
		return File{}, invalid(err.Error())
	}
	if !validUTF8(header) {
		return File{}, notUTF8(1)
	}
	col := map[string]int{}
	var unnamed []int // columns with an empty heading, as a spreadsheet writes "orcid,name,,"
	for i, h := range header {
		if strings.TrimSpace(h) == "" {
			unnamed = append(unnamed, i)
			continue
		}
		name, ok := columnNames[strings.ToLower(strings.TrimSpace(h))]
		if !ok && orcid.Check(orcid.Normalize(h)) == nil {
			return File{}, invalid(fmt.Sprintf("line 1 is a member (%s), not a header: the first line names the columns, as orcid,name,email,eppn", strings.TrimSpace(h)))
		}
		if !ok {
			return File{}, invalid(fmt.Sprintf("line 1: unknown column %s (known: orcid, name, email, eppn)", store.Quote(h)))
		}
		if _, dup := col[name]; dup {
			return File{}, invalid(fmt.Sprintf("line 1: column %q appears twice", name))
		}
		col[name] = i
	}
	if _, ok := col["orcid"]; !ok {
		return File{}, invalid(fmt.Sprintf("line 1: the header has no orcid column (got %s)", store.Quote(strings.Join(header, ","))))
	}
	var f File
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return File{}, invalid(err.Error())
		}
		line, _ := cr.FieldPos(0)
		if len(f.Rows)+len(f.Rejected) >= MaxRows {
			return File{}, invalid(fmt.Sprintf("more than %d rows; split the file", MaxRows))
		}
		if blank(rec) {
			continue // a blank line, or a row of empty cells (",,," as spreadsheets write one)
		}
		if !validUTF8(rec) {
			// The whole file is in another encoding (a spreadsheet's plain "CSV" in
			// Windows-1252): its rows with an accent would be rejected one by one
			// while the others went in, each for a fault of the file's.
			return File{}, notUTF8(line)
		}
		raw := ""
		if i := col["orcid"]; i < len(rec) {
			raw = strings.TrimSpace(rec[i])
		}
		reject := func(reason string) {
			f.Rejected = append(f.Rejected, Rejected{Line: line, Orcid: raw, Reason: reason})
		}
		if len(rec) != len(header) {
			columns := "columns"
			if len(rec) == 1 {
				columns = "column"
			}
			reject(fmt.Sprintf("has %d %s, the header %d", len(rec), columns, len(header)))
			continue
		}
		if i, ok := valueUnnamed(rec, unnamed); ok {
			reject(fmt.Sprintf("column %d has a value, but the header names no column %d", i+1, i+1))
			continue
		}
		id := orcid.Normalize(raw)
		if id == "" {
			reject("orcid is empty")
			continue
		}
		info := store.MemberInfo{Name: field(rec, col, "name"), Email: field(rec, col, "email"), EPPN: field(rec, col, "eppn")}
		// A name or eppn with a character that shows as nothing is the store's to
		// check: it takes the one an older hookd stored for the member again.
		if err := store.CheckMemberForm(id, info); err != nil {
			reject(err.Error())
			continue
		}
		if first, dup := seen[id]; dup {
			reject(fmt.Sprintf("duplicate: %s is already on line %d", id, first))
			continue
		}
		seen[id] = line
		f.Rows = append(f.Rows, store.MemberRow{Orcid: id, Info: info, Line: line})
	}
}

// valueUnnamed finds a value in a column the header gave no name (its index).
func valueUnnamed(rec []string, unnamed []int) (int, bool) {
	for _, i := range unnamed {
		if strings.TrimSpace(rec[i]) != "" {
			return i, true
		}
	}
	return 0, false
}

// validUTF8 reports whether every field of a record is UTF-8.
func validUTF8(rec []string) bool {
	for _, f := range rec {
		if !utf8.ValidString(f) {
			return false
		}
	}
	return true
}

// notUTF8 refuses a file whose line is not UTF-8.
func notUTF8(line int) error {
	return invalid(fmt.Sprintf("line %d is not UTF-8: the file is in another encoding (a spreadsheet's plain \"CSV\" is often Windows-1252); save it as \"CSV UTF-8\" and import it again", line))
}

// headerPeek is how much of a file's start separator reads for its header line.
const headerPeek = 4096

// separator is the file's field separator, read from its header line: a comma,
// unless the header has none and has semicolons (as a spreadsheet in a language
// whose decimal mark is a comma writes a CSV file) or tabs (a tab-separated export).
func separator(br *bufio.Reader) rune {
	b, _ := br.Peek(headerPeek)
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	switch {
	case bytes.IndexByte(b, ',') >= 0:
		return ','
	case bytes.IndexByte(b, ';') >= 0:
		return ';'
	case bytes.IndexByte(b, '\t') >= 0:
		return '\t'
	}
	return ','
}

// blank reports whether every field of rec is empty or spaces.
func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// field is the value of a column the file has, or nil when it has no such column.
func field(rec []string, col map[string]int, name string) *string {
	i, ok := col[name]
	if !ok {
		return nil
	}
	v := strings.TrimSpace(rec[i])
	return &v
}

// invalid is Parse's error for a file it cannot read.
func invalid(msg string) error { return &store.Error{Code: store.Invalid, Message: msg} }
