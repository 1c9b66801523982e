package message

import (
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
)

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc..."},
		{"grüße", 3, "gr..."}, // ü is two bytes: the cut moves back to its start
		{"grüße", 4, "grü..."},
		{"日本語", 4, "日..."},
		{"abc", 0, "..."},
	}
	for _, tc := range cases {
		g := NewWithT(t)
		got := Truncate(tc.in, tc.n)
		g.Expect(got).To(Equal(tc.want), "%q cut at %d", tc.in, tc.n)
		g.Expect(utf8.ValidString(got)).To(BeTrue())
	}
}
