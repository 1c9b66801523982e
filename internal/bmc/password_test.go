package bmc

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestPasswordLength(t *testing.T) {
	tests := []struct {
		name     string
		min, max int
		want     int
		wantErr  string
	}{
		{name: "the BMC's maximum", max: 20, want: 20},
		{name: "capped", max: 127, want: MaxGeneratedPasswordLength},
		{name: "not announced", want: DefaultGeneratedPasswordLength},
		{name: "not announced, longer minimum", min: 24, want: 24},
		{name: "minimum above the cap", min: 40, max: 64, want: 40},
		{name: "the shortest possible", max: 4, want: 4},
		{name: "too short for four classes", max: 3, wantErr: "MaxPasswordLength is 3, less than 4"},
		{name: "one", max: 1, wantErr: "MaxPasswordLength is 1"},
		{name: "minimum above the maximum", min: 12, max: 10, wantErr: "MinPasswordLength 12 is more than MaxPasswordLength 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := PasswordLength(AccountService{MinPasswordLength: tt.min, MaxPasswordLength: tt.max})
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ErrPasswordRules))
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	tests := []struct {
		manufacturer string
		max          int
		specials     string
	}{
		{ManufacturerDell, 20, "!#$%&()*.?-@[]^_`{}|~+="},
		{ManufacturerHPE, 39, "~`!@#$%^&*()_-+={[}]|.?/"},
		{ManufacturerLenovo, 16, ";@!$%-+=[]{}|/?~_"},
		{"Supermicro", 4, "!@#$%&*()_-+=[]{}/?~|"},
		{"", 0, "!@#$%&*()_-+=[]{}/?~|"},
	}
	for _, tt := range tests {
		t.Run(tt.manufacturer, func(t *testing.T) {
			g := NewWithT(t)
			svc := AccountService{MaxPasswordLength: tt.max}
			wantLen, err := PasswordLength(svc)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(SpecialCharacters(tt.manufacturer)).To(Equal(tt.specials))
			seen := map[string]bool{}
			// Every generated password has each class, whatever the shuffle did.
			for range 200 {
				pw, err := GeneratePassword(svc, tt.manufacturer)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(pw).To(HaveLen(wantLen))
				for _, class := range []string{lowerCharacters, upperCharacters, digitCharacters, tt.specials} {
					g.Expect(strings.ContainsAny(pw, class)).To(BeTrue(), "%q lacks one of %q", pw, class)
				}
				for _, c := range pw {
					g.Expect(strings.ContainsRune(lowerCharacters+upperCharacters+digitCharacters+tt.specials, c)).
						To(BeTrue(), "%q has %q, not accepted by %s BMCs", pw, c, tt.manufacturer)
				}
				seen[pw] = true
			}
			if wantLen > 4 {
				g.Expect(len(seen)).To(BeNumerically(">", 190), "passwords repeat")
			}
		})
	}
}

func TestGeneratePasswordRefusesImpossibleRules(t *testing.T) {
	g := NewWithT(t)
	_, err := GeneratePassword(AccountService{MaxPasswordLength: 3}, ManufacturerDell)
	g.Expect(err).To(MatchError(ErrPasswordRules))
}
