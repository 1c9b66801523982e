// Package ignition validates the ignition config of a ServerBootConfiguration's Secret and
// renders it as the Ignition JSON a booting server fetches.
//
// The Secret holds the config under the key "ignition", either as Ignition JSON or as a
// Butane config (YAML with "variant" and "version"), optionally labelled by the key "format"
// ("fcos", "flatcar", "butane", "ignition" or "json"). Ignition JSON is validated with
// github.com/coreos/ignition/v2/config and served unchanged. Butane is translated here, for
// the subset documented in docs/boot.md (Butane itself is not available as a Go module to
// this project): the structure of Butane and Ignition is the same apart from snake_case
// keys, "inline" contents and sugar; the sugar (trees, local files, boot_device, grub, ...)
// is rejected.
//
// No error of this package carries the Secret's content: messages name keys, positions and
// Ignition's own validation messages only, so they are safe for conditions, events and logs.
package ignition

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	ignconfig "github.com/coreos/ignition/v2/config"
	ignerrors "github.com/coreos/ignition/v2/config/shared/errors"
	"github.com/coreos/vcontext/path"
	"github.com/coreos/vcontext/report"
	"sigs.k8s.io/yaml"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Secret keys.
const (
	// KeyIgnition holds the config.
	KeyIgnition = "ignition"
	// KeyFormat optionally says what the config is.
	KeyFormat = "format"
)

// Formats of the "format" key.
const (
	FormatFCOS     = "fcos"
	FormatFlatcar  = "flatcar"
	FormatButane   = "butane"
	FormatIgnition = "ignition"
	FormatJSON     = "json"
)

// Error is an unusable ignition Secret. Reason is ReasonIgnitionKeyMissing or
// ReasonInvalidIgnition; Message never contains the Secret's content.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

func invalidf(format string, args ...any) error {
	return &Error{Reason: metalv1alpha1.ReasonInvalidIgnition, Message: fmt.Sprintf(format, args...)}
}

// Render validates the data of an ignition Secret and returns the Ignition JSON to serve.
// Errors are *Error.
func Render(data map[string][]byte) ([]byte, error) {
	content, ok := data[KeyIgnition]
	if !ok {
		return nil, &Error{Reason: metalv1alpha1.ReasonIgnitionKeyMissing, Message: fmt.Sprintf("the Secret has no key %q", KeyIgnition)}
	}
	format := strings.ToLower(strings.TrimSpace(string(data[KeyFormat])))
	switch format {
	case "", FormatFCOS, FormatFlatcar, FormatButane, FormatIgnition, FormatJSON:
	default:
		return nil, invalidf("unknown format %q: use %s, %s, %s or %s", format, FormatIgnition, FormatFCOS, FormatFlatcar, FormatButane)
	}
	if len(bytes.TrimSpace(content)) == 0 {
		return nil, invalidf("the ignition config is empty")
	}
	var doc map[string]any
	jsonErr := json.Unmarshal(content, &doc)
	if jsonErr == nil {
		// A key given twice would be read as its last value by one reader and its first by
		// another: refuse it.
		if err := rejectDuplicateKeys(content); err != nil {
			return nil, err
		}
		if _, butane := doc["variant"]; !butane {
			return validateIgnition(content)
		}
		return translateButane(doc)
	}
	if format == FormatIgnition || format == FormatJSON || bytes.HasPrefix(bytes.TrimSpace(content), []byte("{")) {
		return nil, invalidf("the ignition config is not valid JSON%s", jsonPosition(content, jsonErr))
	}
	// Strict: a key given twice in a YAML mapping is an error.
	converted, err := yaml.YAMLToJSONStrict(content)
	if err != nil && strings.Contains(err.Error(), "already set in map") {
		return nil, invalidf("the Butane config has a key twice: %s", yamlPosition(err))
	}
	if err != nil {
		return nil, invalidf("the ignition config is neither Ignition JSON nor Butane YAML: %s", yamlPosition(err))
	}
	if err := json.Unmarshal(converted, &doc); err != nil || doc == nil {
		return nil, invalidf("the ignition config is neither Ignition JSON nor Butane YAML")
	}
	return translateButane(doc)
}

// rejectDuplicateKeys fails on the first object key (in document order) given twice in one
// object of the JSON document data, naming its path.
func rejectDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	at := path.New("json")
	if dup, found := duplicateIn(dec, at); found {
		return invalidf("the config has the key %s twice", butanePath(dup))
	}
	return nil
}

// duplicateIn reads one JSON value from dec and reports the path of the first duplicate key
// in it. A syntax error ends the walk without a finding: the caller has parsed data already.
func duplicateIn(dec *json.Decoder, at path.ContextPath) (path.ContextPath, bool) {
	tok, err := dec.Token()
	if err != nil {
		return at, false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return at, false
			}
			k, _ := kt.(string)
			if seen[k] {
				return at.Append(k), true
			}
			seen[k] = true
			if dup, found := duplicateIn(dec, at.Append(k)); found {
				return dup, true
			}
		}
		_, _ = dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if dup, found := duplicateIn(dec, at.Append(i)); found {
				return dup, true
			}
		}
		_, _ = dec.Token()
	}
	return at, false
}

// validateIgnition validates Ignition JSON and returns it unchanged.
func validateIgnition(content []byte) ([]byte, error) {
	_, rpt, err := ignconfig.Parse(content)
	if err != nil {
		return nil, invalidf("the Ignition config is not valid: %s", describe(err, rpt))
	}
	return content, nil
}

// butaneSpecs maps a Butane variant and version to the Ignition spec version it produces.
var butaneSpecs = map[string]map[string]string{
	"fcos": {
		"1.0.0": "3.0.0",
		"1.1.0": "3.1.0",
		"1.2.0": "3.2.0",
		"1.3.0": "3.2.0",
		"1.4.0": "3.3.0",
		"1.5.0": "3.4.0",
		"1.6.0": "3.5.0",
	},
	"flatcar": {
		"1.0.0": "3.3.0",
		"1.1.0": "3.4.0",
	},
}

// translateButane translates a parsed Butane config to Ignition JSON and validates it.
func translateButane(doc map[string]any) ([]byte, error) {
	variant, _ := doc["variant"].(string)
	version, _ := doc["version"].(string)
	if variant == "" || version == "" {
		return nil, invalidf("the Butane config needs string keys variant and version")
	}
	versions, ok := butaneSpecs[variant]
	if !ok {
		return nil, invalidf("unsupported Butane variant %q: supported are fcos and flatcar", variant)
	}
	spec, ok := versions[version]
	if !ok {
		return nil, invalidf("unsupported Butane version %q of variant %s", version, variant)
	}
	delete(doc, "variant")
	delete(doc, "version")
	converted, err := convert(doc, path.New("json"))
	if err != nil {
		return nil, err
	}
	out := converted.(map[string]any)
	ign, _ := out["ignition"].(map[string]any)
	if ign == nil {
		if _, exists := out["ignition"]; exists {
			return nil, invalidf("the Butane key ignition must be a mapping")
		}
		ign = map[string]any{}
		out["ignition"] = ign
	}
	ign["version"] = spec
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, invalidf("the Butane config cannot be translated: %v", err)
	}
	_, rpt, err := ignconfig.Parse(raw)
	if err != nil {
		return nil, invalidf("the Butane config does not translate to a valid Ignition config: %s", describe(err, rpt))
	}
	// Ignition only warns about keys it does not know; after the translation such a key is
	// Butane sugar this translation does not support, which would silently be dropped.
	for _, e := range rpt.Entries {
		if strings.HasPrefix(e.Message, "unused key ") {
			return nil, invalidf("the Butane config uses %s, which is not supported here: store Ignition JSON (butane --strict) instead", butanePath(e.Context))
		}
	}
	return raw, nil
}

// convert turns Butane's snake_case keys into Ignition's camelCase ones and "inline"
// contents into data URLs, recursively. Keys are visited in sorted order, so that the
// outcome (and the error, if any) does not depend on map order. A key that is not lower
// snake_case is no Butane key and is refused: camelKey would otherwise make "files_" or
// "source_" into a key Ignition knows, silently.
func convert(v any, at path.ContextPath) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		from := make(map[string]string, len(t))
		for _, k := range slices.Sorted(maps.Keys(t)) {
			val := t[k]
			if !butaneKey(k) {
				return nil, invalidf("the Butane config has the unknown key %s", butanePath(at.Append(k)))
			}
			ck := camelKey(k)
			if k == "inline" {
				ck = "source"
			}
			if prev, dup := from[ck]; dup {
				if prev == "inline" || k == "inline" {
					return nil, invalidf("the Butane keys inline and source are exclusive at %s", butanePath(at))
				}
				return nil, invalidf("the Butane config has the key %s twice", butanePath(at.Append(k)))
			}
			from[ck] = k
			if k == "inline" {
				s, ok := val.(string)
				if !ok {
					return nil, invalidf("the Butane key %s must be a string", butanePath(at.Append(k)))
				}
				out[ck] = "data:;base64," + base64.StdEncoding.EncodeToString([]byte(s))
				continue
			}
			c, err := convert(val, at.Append(ck))
			if err != nil {
				return nil, err
			}
			out[ck] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			c, err := convert(val, at.Append(i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	default:
		return v, nil
	}
}

// butaneKey reports whether k is spelled like a Butane key: lower-case words of letters and
// digits joined by single underscores, starting with a letter.
func butaneKey(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for word := range strings.SplitSeq(k, "_") {
		if word == "" {
			return false
		}
		for _, r := range word {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
				return false
			}
		}
	}
	return true
}

// camelKey maps a Butane key to its Ignition spelling: ssh_authorized_keys ->
// sshAuthorizedKeys, size_mib -> sizeMiB. k is a butaneKey.
func camelKey(k string) string {
	first, rest, _ := strings.Cut(k, "_")
	var b strings.Builder
	b.WriteString(first)
	for p := range strings.SplitSeq(rest, "_") {
		switch p {
		case "":
		case "mib":
			b.WriteString("MiB")
		default:
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}

// butanePath renders a context path as a dotted key path: storage.files[0].contents.
func butanePath(p path.ContextPath) string {
	var b strings.Builder
	for _, e := range p.Path {
		switch v := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, v)
		}
	}
	if b.Len() == 0 {
		return "the top level"
	}
	return b.String()
}

// describe summarises an Ignition parse failure without quoting the config: the first
// fatal entry's key path and, for validation errors, Ignition's message.
func describe(err error, rpt report.Report) string {
	for _, e := range rpt.Entries {
		if !e.Kind.IsFatal() {
			continue
		}
		where := butanePath(e.Context)
		if len(e.Context.Path) == 0 {
			// A JSON decoding error: its message may quote the config; give the position.
			if e.Marker.StartP != nil {
				return fmt.Sprintf("malformed at line %d, column %d", e.Marker.StartP.Line, e.Marker.StartP.Column)
			}
			return "malformed"
		}
		if strings.ContainsAny(e.Message, "\"'`") {
			return fmt.Sprintf("invalid value at %s", where)
		}
		return fmt.Sprintf("%s: %s", where, e.Message)
	}
	switch {
	case errors.Is(err, ignerrors.ErrUnknownVersion), errors.Is(err, ignerrors.ErrInvalidVersion):
		return "unsupported or missing ignition.version"
	case errors.Is(err, ignerrors.ErrEmpty):
		return "the config is empty"
	}
	return err.Error()
}

// jsonPosition gives the position of a JSON syntax error, without the offending text.
func jsonPosition(content []byte, err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line := 1 + bytes.Count(content[:min(int(syn.Offset), len(content))], []byte("\n"))
		return fmt.Sprintf(" (syntax error on line %d)", line)
	}
	return ""
}

// yamlPosition keeps only the line of a YAML error; the rest may quote the document.
func yamlPosition(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i:]
		if j := strings.Index(rest, ":"); j >= 0 {
			rest = rest[:j]
		}
		return "malformed YAML at " + rest
	}
	return "malformed YAML"
}
