package accounts

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/stewardhq/steward/internal/errs"
)

// fuzzKeyPEM is a throwaway RSA key, fixed so that the tokens of the
// checked-in seed corpus keep verifying. It signs nothing but test
// tokens. "TESTING KEY" keeps secret scanners from flagging it.
var fuzzKeyPEM = strings.ReplaceAll(`-----BEGIN TESTING KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDbEtN0UMdy6rqN
r6Hcdm0DMJY7oOg87UmHnGX1j8M7GL3cdwMgR+kA28UUZe7jJdeWhLgI+oIpSVwj
FGJ5hr2uf6+D9S5f3oWAWmp5r7qEln1tGmAy/7IbGmv+8w0XQfANQ7TBKpMi0Bld
qDW8NdMm0B6WZu31y6k+1aKCxkPeJvptTbWevE1iBQgJTo/xmZQx6wLWUFvm/f43
rSGP+RSl4oZ8ijO4XkjBlqLfDfsl4I7zUL5KPhYBgejYyQF139d5OYb1IV1Zjgm3
hm76ggWM3pJPeTGz85sl5DxS1R4q2HKL/QGQgzq3QUvyX7jS/R7A9784K8GWYX3I
3ZbT/LnDAgMBAAECggEAB7ueYy4GxvOqKh4s+c85rIcmhmxORk2fRCjXyyyL7lDC
mD713p8rMQXmQFYTcfPVVvwlqDYk1LhA3FbNMw+ihRT/aQpah1/KGUHCcxEqOvaP
mYOjfv6vlsKpVT0sanRquM0kWufZ0bzEEx5A51KEZYurHhFRYlUSCvnCMW42LxKN
wL7HN/rJprpWZB6voV3JUy4PhYfoJSgIBrYnxtwSHzK169UezfUqvhUoRJZmYfoz
3WyWZj2aJdYWNH3o0tNcAU41I6cCWiBaTJDv565pYndG1SxeaLH9cgjtYzD6AAK1
cpTx8TDczUb/eGxkB1VHXjbULwvYahW1Dy1B5zaLoQKBgQD22AGVr1NBzXDhKzWd
p8g3w15DT9xa8TO2zY0dBG2CH0VmJR6gyZvQ8bu1xRq0Ksz3fbUaCDHy6dw74Oi4
dwmb4Mdi0yflDhB+SCGZfUBLpQIwRhszFxZ1pl+TXZTQvsPUSLvNEza2r2S+zW+7
5OToHnQ2yXoicvGN6C5PJEfdPQKBgQDjMx4Xz1FBthLr3t0RkDCtCPSeqqqPOod0
jnnlTLShXJ4JCszQHt0+pTlkuB/NzNQWsG43M0rNk0S6/sxeKU+mDaaxk0bcD5Sp
upTiHDURAsoXLcDAhhjQp2OsMOUhyRs+gdiubMIKXCKOF/fn3GQytQJ0v4xZ3wi/
FpROa+5i/wKBgEwTSnm9bSVskYtz67RJD3XQKm8IX9tPVybRttnokW92/8Z5TjUz
rWf5+GYO9ynrvvvPrE73k51P4eY6bL7dQQLfhdO5TCRV71NcG67YYUZu9nu2P4/B
X9Smj/I09zZWdLgqKmcLsuMeryf23KbF5p57NEnmUlPnpPadRhhyEAvpAoGBANI+
bWyPFpx+Rogq1dv42HJnRSbGu8qK2OpNJhPApa5krIGlkt5MkWP1NWU01Yl2MBVG
8tb2ChSuYP3B55CDHgeFvmm45euiJ2nhFQEgJSM2t5g3aJVAAhqjq6KeJIrdNO7k
7YSLdAxuMjPXjjrrQXWC92DeGJzZvZhG5rqjOhg1AoGABTiSAuYksdODOowYLB1g
x0fMmqIFAk0NqHgriZnuKGXNSLfSnaD1EJUQYdSDtLSYP4JTbRK6VeQVo7/8zz0b
+zsjjrF0q1M75Wji9jHCRaQEh98fUd3ca+1C9xvN9kP2EPa90HSLdfbjgb9H3mtA
L54o3ij30sMamfCifSYSHeg=
-----END TESTING KEY-----`, "TESTING KEY", "PRIVATE KEY")

const (
	fuzzClientID = "steward-fuzz.apps.googleusercontent.com"
	fuzzKID      = "k1"
)

// fuzzNow is the verifier's clock; the seed tokens are valid at it.
var fuzzNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// fuzzGoogle is a verifier of Google ID tokens whose keys come from a
// test JWKS server publishing the public half of fuzzKeyPEM as k1.
type fuzzGoogle struct {
	v   *googleVerifier
	key *rsa.PrivateKey
}

func newFuzzGoogle(f testing.TB) *fuzzGoogle {
	f.Helper()
	block, _ := pem.Decode([]byte(fuzzKeyPEM))
	if block == nil {
		f.Fatal("fuzzKeyPEM holds no PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		f.Fatal(err)
	}
	priv := parsed.(*rsa.PrivateKey)
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		f.Fatal(err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: fuzzKID, jwk.AlgorithmKey: jwa.RS256(), jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(k, v); err != nil {
			f.Fatal(err)
		}
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	f.Cleanup(srv.Close)
	cfg := Config{GoogleClientID: fuzzClientID, GoogleJWKSURL: srv.URL}.withDefaults()
	v, err := newGoogleVerifier(cfg, srv.Client(), func() time.Time { return fuzzNow }, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.close(context.Background()) })
	g := &fuzzGoogle{v: v, key: priv}
	// The first verification fetches the keys; a valid token must pass.
	if _, err := v.verify(context.Background(), g.sign(f, fuzzClaims(nil))); err != nil {
		f.Fatalf("a valid token is refused: %v", err)
	}
	return g
}

// sign makes an RS256 token of k1 whose payload is exactly payload.
func (g *fuzzGoogle) sign(tb testing.TB, payload []byte) string {
	tb.Helper()
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, fuzzKID); err != nil {
		tb.Fatal(err)
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		tb.Fatal(err)
	}
	raw, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), g.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(raw)
}

// fuzzClaims is the payload of a valid ID token at fuzzNow with changes
// (a nil value removes a claim).
func fuzzClaims(changes map[string]any) []byte {
	c := map[string]any{
		"iss":            "https://accounts.google.com",
		"azp":            fuzzClientID,
		"aud":            fuzzClientID,
		"sub":            "108842159999000000001",
		"email":          "ann@example.com",
		"email_verified": true,
		"name":           "Ann Example",
		"picture":        "https://lh3.googleusercontent.com/a/ann",
		"iat":            fuzzNow.Add(-time.Minute).Unix(),
		"exp":            fuzzNow.Add(time.Hour).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, _ := json.Marshal(c)
	return b
}

// claimSeeds are payloads around the edges of validity.
func claimSeeds() [][]byte {
	hour := fuzzNow.Add(time.Hour).Unix()
	return [][]byte{
		fuzzClaims(nil),
		fuzzClaims(map[string]any{"iss": "accounts.google.com", "azp": nil}),
		fuzzClaims(map[string]any{"exp": fuzzNow.Add(-30 * time.Second).Unix()}),
		fuzzClaims(map[string]any{"exp": fuzzNow.Add(-2 * time.Minute).Unix()}),
		fuzzClaims(map[string]any{"iat": fuzzNow.Add(10 * time.Minute).Unix()}),
		fuzzClaims(map[string]any{"nbf": fuzzNow.Add(10 * time.Minute).Unix()}),
		fuzzClaims(map[string]any{"aud": []string{fuzzClientID, "other.apps.googleusercontent.com"}}),
		fuzzClaims(map[string]any{"aud": []string{fuzzClientID, "other.apps.googleusercontent.com"}, "azp": nil}),
		fuzzClaims(map[string]any{"azp": "other.apps.googleusercontent.com"}),
		fuzzClaims(map[string]any{"aud": "other.apps.googleusercontent.com"}),
		fuzzClaims(map[string]any{"iss": "https://evil.example"}),
		fuzzClaims(map[string]any{"email_verified": "true"}),
		fuzzClaims(map[string]any{"email_verified": false}),
		fuzzClaims(map[string]any{"email": " "}),
		fuzzClaims(map[string]any{"sub": nil}),
		fuzzClaims(map[string]any{"sub": ""}),
		fuzzClaims(map[string]any{"sub": strings.Repeat("7", 256)}),
		fuzzClaims(map[string]any{"azp": 7}),
		fuzzClaims(map[string]any{"iat": 0}),
		fuzzClaims(map[string]any{"exp": float64(hour) + 0.5, "iat": "1777888740"}),
		[]byte(`{"iss":"https://accounts.google.com","aud":"` + fuzzClientID + `","sub":"1","email":"a@b.c","email_verified":true,"iat":1777888740,"exp":1777892400,"aud":"x"}`),
		[]byte(`[]`),
		[]byte(`{}`),
	}
}

// TestGoogleRefusesBadSubjectOrAZP pins what FuzzGoogleClaims caught: tokens
// signed with a published key that still make no valid ID token.
func TestGoogleRefusesBadSubjectOrAZP(t *testing.T) {
	g := newFuzzGoogle(t)
	tests := []struct {
		name   string
		claims map[string]any
		reason string
	}{
		{name: "empty subject", claims: map[string]any{"sub": ""}, reason: ReasonMissingClaim},
		{name: "subject over 255 characters", claims: map[string]any{"sub": strings.Repeat("7", 256)}, reason: ReasonMalformed},
		{name: "authorized party that is not a string", claims: map[string]any{"azp": 7}, reason: ReasonWrongAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := g.v.verify(context.Background(), g.sign(t, fuzzClaims(tt.claims)))
			var se *signInError
			if !errors.As(err, &se) || se.reason != tt.reason {
				t.Fatalf("verify = %v, want refusal %s", err, tt.reason)
			}
		})
	}
}

// FuzzGoogleTokenString verifies fuzzed credential strings: valid tokens
// and their mutations, and junk. It never panics, it refuses with a 401
// (or a 503 while keys cannot be fetched), and it accepts nothing but a
// token signed with the published key whose claims make a valid ID token.
func FuzzGoogleTokenString(f *testing.F) {
	g := newFuzzGoogle(f)
	for _, p := range claimSeeds() {
		f.Add(g.sign(f, p))
	}
	valid := g.sign(f, fuzzClaims(nil))
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0." + parts[1] + "." + parts[2],
		"eyJhbGciOiJSUzI1NiIsImtpZCI6Ims5In0." + parts[1] + "." + parts[2],
		valid + "." + parts[2],
		`{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`,
		"not.a.jwt",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, credential string) {
		c, err := g.v.verify(context.Background(), credential)
		if err != nil {
			wantRefusal(t, err)
			return
		}
		payload, ok := signedPayload(&g.key.PublicKey, credential)
		if !ok {
			t.Fatalf("accepted a token not signed with the published key: %q", credential)
		}
		checkAccepted(t, payload, c)
	})
}

// FuzzGoogleClaims signs fuzzed payloads with the published key, so that
// every one reaches the claim checks, and compares the verifier's answer
// with a reading of the claims by OpenID Connect's rules.
func FuzzGoogleClaims(f *testing.F) {
	g := newFuzzGoogle(f)
	for _, p := range claimSeeds() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := g.v.verify(context.Background(), g.sign(t, payload))
		want := judgeClaims(payload)
		if err != nil {
			wantRefusal(t, err)
			if want.verdict == claimsValid {
				t.Fatalf("refused valid claims %s: %v", payload, err)
			}
			return
		}
		checkAccepted(t, payload, c)
	})
}

// wantRefusal fails unless err is a refused sign-in (401) or keys that
// cannot be fetched (503).
func wantRefusal(t *testing.T, err error) {
	t.Helper()
	var se *signInError
	if !errors.As(err, &se) && !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("error %v is neither a refused sign-in nor unavailable keys", err)
	}
	if se != nil && !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("refusal %v is not a 401", err)
	}
}

// checkAccepted fails unless the claims of an accepted token make a valid
// ID token whose subject and email are the ones signed in.
func checkAccepted(t *testing.T, payload []byte, c googleClaims) {
	t.Helper()
	want := judgeClaims(payload)
	if want.verdict == claimsInvalid {
		t.Fatalf("accepted claims %s: %s", payload, want.why)
	}
	if want.verdict == claimsValid && (c.Subject != want.sub || c.Email != want.email) {
		t.Fatalf("signed in as %q <%s>, the token says %q <%s>", c.Subject, c.Email, want.sub, want.email)
	}
}

// signedPayload returns the payload of a compact JWS whose RS256
// signature verifies with pub.
func signedPayload(pub *rsa.PublicKey, token string) ([]byte, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	hdr, ok1 := b64(parts[0])
	payload, ok2 := b64(parts[1])
	sig, ok3 := b64(parts[2])
	if !ok1 || !ok2 || !ok3 {
		return nil, false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "RS256" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return nil, false
	}
	return payload, true
}

// b64 decodes base64url, with or without padding.
func b64(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return b, err == nil
}

// Verdicts of judgeClaims. Unsure covers what is legitimately read either
// way: a time within a second or two of a limit, and claim forms Google
// never sends (a date as a string).
const (
	claimsValid = iota
	claimsInvalid
	claimsUnsure
)

type judgement struct {
	verdict    int
	why        string
	sub, email string
}

// judgeClaims reads an ID token's claims by OpenID Connect Core 3.1.3.7
// and Google's documentation, independently of the verifier.
func judgeClaims(payload []byte) judgement {
	invalid := func(why string) judgement { return judgement{verdict: claimsInvalid, why: why} }
	var c map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c == nil {
		return invalid("not a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return invalid("data after the object")
	}
	j := judgement{verdict: claimsValid}
	unsure := func() { j.verdict = claimsUnsure }
	if iss, _ := c["iss"].(string); !slices.Contains(DefaultGoogleIssuers(), iss) {
		return invalid("issuer")
	}
	var aud []string
	switch a := c["aud"].(type) {
	case string:
		aud = []string{a}
	case []any:
		for _, v := range a {
			s, ok := v.(string)
			if !ok {
				return invalid("audience list holds a non-string")
			}
			aud = append(aud, s)
		}
	default:
		return invalid("audience")
	}
	if !slices.Contains(aud, fuzzClientID) {
		return invalid("audience")
	}
	azp, hasAZP := c["azp"]
	if hasAZP && azp != fuzzClientID {
		return invalid("authorized party")
	}
	if len(aud) > 1 && !hasAZP {
		return invalid("several audiences and no authorized party")
	}
	const skew = DefaultClockSkew
	now := float64(fuzzNow.Unix())
	date := func(name string, required bool, ok func(sec float64) bool) bool {
		v, present := c[name]
		if !present {
			return !required
		}
		n, isNumber := v.(json.Number)
		if !isNumber {
			if _, isString := v.(string); isString {
				unsure()
				return true
			}
			return false
		}
		sec, err := n.Float64()
		if err != nil || math.IsInf(sec, 0) {
			unsure()
			return true
		}
		for _, near := range []float64{-2, -1, 0, 1, 2} {
			if ok(sec+near) != ok(sec) {
				unsure()
			}
		}
		// Zero reads as an unset date.
		if sec == 0 || sec > 1e11 || sec < -1e11 {
			unsure()
		}
		return ok(sec)
	}
	if !date("exp", true, func(s float64) bool { return now < s+skew.Seconds() }) {
		return invalid("expired or no expiry")
	}
	if !date("iat", true, func(s float64) bool { return s <= now+skew.Seconds() }) {
		return invalid("issued in the future or no issue time")
	}
	if !date("nbf", false, func(s float64) bool { return s <= now+skew.Seconds() }) {
		return invalid("not yet valid")
	}
	sub, _ := c["sub"].(string)
	if sub == "" || len(sub) > 255 {
		// OpenID Connect: a locally unique identifier of at most 255
		// ASCII characters.
		return invalid("subject")
	}
	email, _ := c["email"].(string)
	if strings.TrimSpace(email) == "" {
		return invalid("email")
	}
	if v := c["email_verified"]; v != true && v != "true" {
		return invalid("email not verified")
	}
	j.sub, j.email = sub, email
	return j
}
