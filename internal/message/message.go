// Package message shapes text that reaches a user from what a peer said: cut to a bound on
// a rune boundary. Controllers use it for condition messages, the BMC client for the
// messages BMCs return.
package message

import "unicode/utf8"

// MaxCondition bounds condition messages built from what a peer (a BMC, a registry) said
// or from long lists.
const MaxCondition = 512

// Truncate cuts s to at most n bytes on a rune boundary, marking the cut with "...".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
