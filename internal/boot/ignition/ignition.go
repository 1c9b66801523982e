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
		if _, butane := doc["variant"]; !butane {
			return validateIgnition(content)
		}
		return translateButane(doc)
	}
	if format == FormatIgnition || format == FormatJSON || bytes.HasPrefix(bytes.TrimSpace(content), []byte("{")) {
		return nil, invalidf("the ignition config is not valid JSON%s", jsonPosition(content, jsonErr))
	}
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, invalidf("the ignition config is neither Ignition JSON nor Butane YAML: %s", yamlPosition(err))
	}
	if doc == nil {
		return nil, invalidf("the ignition config is neither Ignition JSON nor Butane YAML")
	}
	return translateButane(doc)
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
// contents into data URLs, recursively.
func convert(v any, at path.ContextPath) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if k == "inline" {
				s, ok := val.(string)
				if !ok {
					return nil, invalidf("the Butane key %s must be a string", butanePath(at.Append(k)))
				}
				if _, both := t["source"]; both {
					return nil, invalidf("the Butane keys inline and source are exclusive at %s", butanePath(at))
				}
				out["source"] = "data:;base64," + base64.StdEncoding.EncodeToString([]byte(s))
				continue
			}
			ck := camelKey(k)
			if _, dup := out[ck]; dup {
				return nil, invalidf("the Butane config has the key %s twice", butanePath(at.Append(k)))
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

// camelKey maps a Butane key to its Ignition spelling: ssh_authorized_keys ->
// sshAuthorizedKeys, size_mib -> sizeMiB.
func camelKey(k string) string {
	parts := strings.Split(k, "_")
	if len(parts) == 1 {
		return k
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		if p == "mib" {
			b.WriteString("MiB")
			continue
		}
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
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
