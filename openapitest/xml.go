package openapitest

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

func init() {
	// kin-openapi decodes JSON, forms and text, not XML: ORCID's error body comes in
	// XML too.
	openapi3filter.RegisterBodyDecoder("application/xml", decodeXML)
}

// decodeXML turns an XML body into the JSON value its schema describes, for
// validation: the root element must have the name and namespace of the schema's
// xml object, and each child element, in that namespace, is the property of its
// name, read as the property's type. It handles what hookd sends in XML, an object
// of simple elements (ORCID's error body); anything else is an error.
func decodeXML(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	if schema == nil || schema.Value == nil {
		return nil, errors.New("XML body without a schema")
	}
	names, props := xmlShape(schema.Value)
	if names == nil {
		return nil, errors.New("the schema of an XML body has no xml object naming its root element")
	}
	var doc struct {
		XMLName  xml.Name
		Attrs    []xml.Attr `xml:",any,attr"`
		Children []struct {
			XMLName xml.Name
			Inner   string `xml:",innerxml"`
		} `xml:",any"`
	}
	dec := xml.NewDecoder(body)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("XML body: %w", err)
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("XML body after the root element: %w", err)
		}
		if cd, ok := tok.(xml.CharData); ok && len(strings.TrimSpace(string(cd))) == 0 {
			continue
		}
		if _, ok := tok.(xml.Comment); ok {
			continue
		}
		return nil, fmt.Errorf("XML body has more after its root element: %T", tok)
	}
	if doc.XMLName.Local != names.Name || doc.XMLName.Space != names.Namespace {
		return nil, fmt.Errorf("XML root element is {%s}%s, the schema names {%s}%s",
			doc.XMLName.Space, doc.XMLName.Local, names.Namespace, names.Name)
	}
	out := make(map[string]any, len(doc.Children))
	for _, c := range doc.Children {
		name := c.XMLName.Local
		if c.XMLName.Space != names.Namespace {
			return nil, fmt.Errorf("XML element %s is in the namespace %q, not %q", name, c.XMLName.Space, names.Namespace)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("XML element %s appears twice", name)
		}
		if strings.Contains(c.Inner, "<") && !strings.HasPrefix(strings.TrimSpace(c.Inner), "<![CDATA[") {
			return nil, fmt.Errorf("XML element %s has elements inside: only simple elements are read", name)
		}
		var text struct {
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal([]byte("<x>"+c.Inner+"</x>"), &text); err != nil {
			return nil, fmt.Errorf("XML element %s: %w", name, err)
		}
		out[name] = xmlValue(text.Text, props[name])
	}
	return out, nil
}

// xmlShape finds the xml object that names the root element of s, and the
// properties of s, through allOf.
func xmlShape(s *openapi3.Schema) (*openapi3.XML, map[string]*openapi3.SchemaRef) {
	names := s.XML
	props := map[string]*openapi3.SchemaRef{}
	for _, sub := range s.AllOf {
		if sub == nil || sub.Value == nil {
			continue
		}
		n, p := xmlShape(sub.Value)
		if names == nil {
			names = n
		}
		for k, v := range p {
			if _, ok := props[k]; !ok {
				props[k] = v
			}
		}
	}
	for k, v := range s.Properties {
		if v != nil && v.Value != nil && v.Value.Type != nil && !v.Value.Type.IsEmpty() {
			props[k] = v // a typed property wins over one that only adds a constraint
		} else if _, ok := props[k]; !ok {
			props[k] = v
		}
	}
	return names, props
}

// xmlValue reads an element's text as its property's type; text that does not
// read as that type stays a string, which the schema then refuses.
func xmlValue(text string, prop *openapi3.SchemaRef) any {
	if prop == nil || prop.Value == nil || prop.Value.Type == nil {
		return text
	}
	switch t := prop.Value.Type; {
	case t.Is("integer"):
		if _, err := strconv.ParseInt(text, 10, 64); err == nil {
			return json.Number(text)
		}
	case t.Is("number"):
		if _, err := strconv.ParseFloat(text, 64); err == nil {
			return json.Number(text)
		}
	case t.Is("boolean"):
		if b, err := strconv.ParseBool(text); err == nil {
			return b
		}
	}
	return text
}
