package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// Collections in one request. A service that advertises the $expand query in its service root
// (ProtocolFeaturesSupported.ExpandQuery, DMTF DSP0266) returns a collection with its members
// in place of their links ("$expand=." expands the hyperlinks outside the Links property,
// "$levels=n" n levels deep). The client asks for that where the service advertises it, and
// reads whatever came back as a bare link member by member, as it does with a service that
// advertises nothing. What a service supports is learnt from its service root once per
// address (expandRetention); a service that refuses the query (400, 501) is taken at its word
// for as long.

// expandRetention is how long what an address supports is remembered: a firmware update is
// seen within it.
const expandRetention = time.Hour

// expandedBodyFactor bounds an expanded response: this many times Config.MaxResponseBytes. A
// larger one is read member by member instead.
const expandedBodyFactor = 4

// expandSupport is what each address (scheme and host) supports, for every client of the
// process: clients live for one reconcile, services for much longer.
var expandSupport = cachelag.NewStore[string, expandLevels](cachelag.Options{Retention: expandRetention})

// expandLevels is how deep a service expands: max is the deepest $levels it allows (0: no
// $expand), withLevels whether it takes the $levels option at all (else "$expand=." is one
// level).
type expandLevels struct {
	max        int
	withLevels bool
}

// expandQuery is ServiceRoot.ProtocolFeaturesSupported.ExpandQuery.
type expandQuery struct {
	ExpandAll bool `json:"ExpandAll"`
	Levels    bool `json:"Levels"`
	Links     bool `json:"Links"`
	MaxLevels int  `json:"MaxLevels"`
	NoLinks   bool `json:"NoLinks"`
}

// levelsOf is what an advertisement allows: "." (NoLinks) is all the client uses.
func levelsOf(q *expandQuery) expandLevels {
	switch {
	case q == nil || !q.NoLinks:
		return expandLevels{}
	case !q.Levels || q.MaxLevels < 1:
		return expandLevels{max: 1}
	}
	return expandLevels{max: min(q.MaxLevels, maxExpandLevels), withLevels: true}
}

// maxExpandLevels is the deepest expansion the client asks for (storage: its controllers,
// their drives and volume collections, and the volumes).
const maxExpandLevels = 3

// expansion returns the query that expands up to want levels (capped by what the service
// allows), or "" when the service does not expand. A service that does not answer fails it;
// one whose service root answers with an error status, or with what is not a service root,
// does not expand.
func (c *Client) expansion(ctx context.Context, want int) (string, error) {
	key := c.base.String()
	l, _, ok := expandSupport.Get(key)
	if !ok {
		var root ServiceRoot
		_, err := c.getServiceRootNoAuth(ctx, &root)
		if _, answered := errors.AsType[*HTTPError](err); err != nil && !answered && !errors.Is(err, errUndecodable) {
			return "", c.redact(err)
		}
		l = levelsOf(root.ProtocolFeaturesSupported.ExpandQuery)
		expandSupport.Set(key, l)
	}
	switch n := min(want, l.max); {
	case n < 1:
		return "", nil
	case !l.withLevels:
		return "$expand=.", nil
	default:
		return "$expand=.($levels=" + strconv.Itoa(n) + ")", nil
	}
}

// refuseExpansion remembers that the service refused the $expand query.
func (c *Client) refuseExpansion() {
	expandSupport.Set(c.base.String(), expandLevels{})
}

// member is a collection member or another hyperlink that the service may have expanded in
// place: the resource itself (expanded), or its @odata.id alone.
type member[T any] struct {
	id       string
	val      T
	expanded bool
}

func (m *member[T]) UnmarshalJSON(b []byte) error {
	var props map[string]json.RawMessage
	if err := json.Unmarshal(b, &props); err != nil || props == nil {
		return err
	}
	if raw, ok := props["@odata.id"]; ok {
		if err := json.Unmarshal(raw, &m.id); err != nil {
			return err
		}
	}
	for k := range props {
		if !strings.HasPrefix(k, "@") {
			m.expanded = true
			break
		}
	}
	if !m.expanded {
		return nil
	}
	return json.Unmarshal(b, &m.val)
}

// memberCollection is a collection whose members may be expanded.
type memberCollection[T any] struct {
	Members  []member[T] `json:"Members"`
	NextLink string      `json:"Members@odata.nextLink"`
}

// readMembers reads a collection, expanded up to levels deep where the service allows it,
// following Members@odata.nextLink. A service that refuses the query, or whose expanded
// answer exceeds its bound, is read without it.
func readMembers[T any](ctx context.Context, c *Client, collectionURI string, levels int) ([]member[T], error) {
	q, err := c.expansion(ctx, levels)
	if err != nil {
		return nil, err
	}
	if q != "" {
		out, err := readPages[T](ctx, c, collectionURI+"?"+q, collectionURI, c.maxBody*expandedBodyFactor)
		switch {
		case err == nil:
			return out, nil
		case ctx.Err() != nil:
			return nil, err
		case errors.Is(err, bmc.ErrBadRequest), errors.Is(err, bmc.ErrNotSupported):
			c.refuseExpansion()
		}
		// Any other failure of the expanded read (too large, a server error, what does not
		// decode) costs this read its expansion only: member by member may still work.
	}
	return readPages[T](ctx, c, collectionURI, collectionURI, c.maxBody)
}

// readPages reads the pages of a collection from first on, each bounded by limit, at most
// maxMembers members and maxObjects JSON objects (expanded members and what they hold) in
// all.
func readPages[T any](ctx context.Context, c *Client, first, collectionURI string, limit int64) ([]member[T], error) {
	var out []member[T]
	objects := c.maxObjects()
	next := first
	for page := 0; next != "" && page < maxPages; page++ {
		var col memberCollection[T]
		_, n, err := c.getJSONObjects(ctx, next, &col, limit, objects)
		if err != nil {
			return nil, err
		}
		objects -= n
		if len(out)+len(col.Members) > c.maxMembers {
			return nil, fmt.Errorf("redfish: collection %s: %w: more than %d members", c.errPath(collectionURI), ErrResponseTooLarge, c.maxMembers)
		}
		out = append(out, col.Members...)
		next = col.NextLink
	}
	return out, nil
}

// resolve returns the resources of members (fill).
func resolve[T any](ctx context.Context, c *Client, members []member[T]) ([]T, error) {
	filled, err := fill(ctx, c, members)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(filled))
	for _, m := range filled {
		out = append(out, m.val)
	}
	return out, nil
}

// fill returns members with their resources: the expanded ones as they came, the others read
// one by one (getAll; one that answers 404 is left out). Members without a link are left out.
func fill[T any](ctx context.Context, c *Client, members []member[T]) ([]member[T], error) {
	var uris []string
	for _, m := range members {
		if !m.expanded && m.id != "" {
			uris = append(uris, m.id)
		}
	}
	fetched, found, err := getAll[T](ctx, c, uris)
	if err != nil {
		return nil, err
	}
	out := make([]member[T], 0, len(members))
	i := 0
	for _, m := range members {
		switch {
		case m.expanded:
			out = append(out, m)
		case m.id != "":
			if found[i] {
				out = append(out, member[T]{id: m.id, val: fetched[i]})
			}
			i++
		}
	}
	return out, nil
}
