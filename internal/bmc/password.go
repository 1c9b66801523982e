package bmc

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
)

// ErrPasswordRules: the BMC's password rules admit no password with a lower-case letter, an
// upper-case letter, a digit and a special character.
var ErrPasswordRules = errors.New("the BMC's password rules admit no password")

// Lengths of generated passwords.
const (
	// MinGeneratedPasswordLength is the shortest password that has one character of each class.
	MinGeneratedPasswordLength = 4
	// MaxGeneratedPasswordLength caps the length of a generated password: a BMC that allows
	// longer ones gets this many characters.
	MaxGeneratedPasswordLength = 32
	// DefaultGeneratedPasswordLength is used when a BMC does not announce MaxPasswordLength.
	DefaultGeneratedPasswordLength = 16
)

// Manufacturers as BMCs report them (BMC status.manufacturer).
const (
	ManufacturerDell   = "Dell Inc."
	ManufacturerHPE    = "HPE"
	ManufacturerLenovo = "Lenovo"
)

const (
	lowerCharacters = "abcdefghijklmnopqrstuvwxyz"
	upperCharacters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitCharacters = "0123456789"
	// defaultSpecialCharacters are accepted by BMCs of any other manufacturer.
	defaultSpecialCharacters = "!@#$%&*()_-+=[]{}/?~|"
)

// specialCharacters are the special characters each manufacturer's BMCs accept in passwords.
var specialCharacters = map[string]string{
	ManufacturerDell:   "!#$%&()*.?-@[]^_`{}|~+=",
	ManufacturerHPE:    "~`!@#$%^&*()_-+={[}]|.?/",
	ManufacturerLenovo: ";@!$%-+=[]{}|/?~_",
}

// SpecialCharacters returns the special characters a password for a BMC of manufacturer may
// contain.
func SpecialCharacters(manufacturer string) string {
	if s, ok := specialCharacters[manufacturer]; ok {
		return s
	}
	return defaultSpecialCharacters
}

// PasswordLength is the length of a password generated under the rules of svc: its
// MaxPasswordLength (DefaultGeneratedPasswordLength when it announces none) capped at
// MaxGeneratedPasswordLength, but at least its MinPasswordLength.
func PasswordLength(svc AccountService) (int, error) {
	maxLen, minLen := svc.MaxPasswordLength, svc.MinPasswordLength
	n := DefaultGeneratedPasswordLength
	if maxLen > 0 {
		n = min(maxLen, MaxGeneratedPasswordLength)
	}
	n = max(n, minLen)
	switch {
	case maxLen > 0 && maxLen < MinGeneratedPasswordLength:
		return 0, fmt.Errorf("%w: MaxPasswordLength is %d, less than %d", ErrPasswordRules, maxLen, MinGeneratedPasswordLength)
	case maxLen > 0 && minLen > maxLen:
		return 0, fmt.Errorf("%w: MinPasswordLength %d is more than MaxPasswordLength %d", ErrPasswordRules, minLen, maxLen)
	}
	return max(n, MinGeneratedPasswordLength), nil
}

// GeneratePassword returns a random password of PasswordLength(svc) characters with at least
// one lower-case letter, upper-case letter, digit and special character of the
// manufacturer's set, from crypto/rand.
func GeneratePassword(svc AccountService, manufacturer string) (string, error) {
	n, err := PasswordLength(svc)
	if err != nil {
		return "", err
	}
	special := SpecialCharacters(manufacturer)
	classes := []string{lowerCharacters, upperCharacters, digitCharacters, special}
	all := lowerCharacters + upperCharacters + digitCharacters + special
	pw := make([]byte, n)
	for i := range pw {
		from := all
		if i < len(classes) {
			from = classes[i]
		}
		j, err := randomIndex(len(from))
		if err != nil {
			return "", err
		}
		pw[i] = from[j]
	}
	// Shuffle, so that the first four characters are not always of the four classes in order.
	for i := len(pw) - 1; i > 0; i-- {
		j, err := randomIndex(i + 1)
		if err != nil {
			return "", err
		}
		pw[i], pw[j] = pw[j], pw[i]
	}
	return string(pw), nil
}

// randomIndex returns a uniformly random number in [0, n).
func randomIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("generating a password: %w", err)
	}
	return int(v.Int64()), nil
}
