package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"golang.org/x/time/rate"

	"github.com/stewardhq/steward/internal/errs"
)

// Sign-in failure reasons. Each is recorded in the abuse log and has its
// own client-safe explanation in the 401 answer.
const (
	ReasonCSRFMissing      = "csrf_missing"
	ReasonCSRFMismatch     = "csrf_mismatch"
	ReasonMalformed        = "malformed_token"
	ReasonAlgorithm        = "unsupported_algorithm"
	ReasonUnknownKey       = "unknown_key_id"
	ReasonBadSignature     = "bad_signature"
	ReasonWrongIssuer      = "wrong_issuer"
	ReasonWrongAudience    = "wrong_audience"
	ReasonExpired          = "token_expired"
	ReasonNotYetValid      = "token_not_yet_valid"
	ReasonMissingClaim     = "missing_claim"
	ReasonEmailNotVerified = "email_not_verified"
)

// reasonDetails are the answers to each failure: what went wrong and what
// to do, never a value from the token or the server's configuration.
var reasonDetails = map[string]string{
	ReasonCSRFMissing:      "The sign-in request lacks its CSRF token: the g_csrf_token cookie and the g_csrf_token field must both be sent. Reload the page and sign in again.",
	ReasonCSRFMismatch:     "The g_csrf_token field does not match the g_csrf_token cookie. Reload the page and sign in again.",
	ReasonMalformed:        "The credential is not a signed JWT ID token.",
	ReasonAlgorithm:        "The ID token is not signed with RS256, the only algorithm Google uses.",
	ReasonUnknownKey:       "The ID token names a signing key (kid) that Google does not publish. Get a new token from Google and try again.",
	ReasonBadSignature:     "The ID token's signature does not verify against Google's published keys.",
	ReasonWrongIssuer:      "The ID token was not issued by Google: its issuer must be accounts.google.com.",
	ReasonWrongAudience:    "The ID token was issued for another application: its audience is not this server's Google client id.",
	ReasonExpired:          "The ID token has expired. Sign in again to get a fresh one.",
	ReasonNotYetValid:      "The ID token is dated in the future. Check this device's clock and sign in again.",
	ReasonMissingClaim:     "The ID token lacks a required claim (sub, email, exp or iat).",
	ReasonEmailNotVerified: "The Google account's email address is not verified. Verify it with Google and sign in again.",
}

// signInError is a refused sign-in: a 401 with the reason's detail, and the
// reason code for the abuse log.
type signInError struct {
	reason string
	err    error
}

func (e *signInError) Error() string { return "sign-in refused (" + e.reason + "): " + e.err.Error() }
func (e *signInError) Unwrap() error { return e.err }

func refuse(reason string) error {
	return &signInError{reason: reason, err: errs.E(errs.ErrUnauthenticated, reasonDetails[reason])}
}

// refuseWith is refuse keeping cause for the log.
func refuseWith(reason string, cause error) error {
	return &signInError{reason: reason, err: errs.Wrap(cause, errs.ErrUnauthenticated, reasonDetails[reason])}
}

// googleClaims are the facts a verified ID token gives.
type googleClaims struct {
	Subject string
	Email   string
	Name    string
	Picture string
}

// googleVerifier verifies Google ID tokens.
//
// It is built on github.com/lestrrat-go/jwx/v3 rather than
// github.com/coreos/go-oidc/v3 for two reasons. jwx reports each failed
// claim as its own error value (expired, audience, issued-at, missing
// claim), so every refusal can tell the client exactly what to fix, where
// go-oidc folds most of them into formatted strings. And its jwk.Cache keeps
// the key set fresh in the background, honouring Google's Cache-Control,
// while letting us force a fetch, which is what key rotation needs: a token
// signed with a key id the cache has not seen yet triggers one fetch,
// rate-limited so that forged key ids cannot make us hammer Google.
type googleVerifier struct {
	cache    *jwk.Cache
	url      string
	clientID string
	issuers  []string
	skew     time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex // serializes forced fetches
	refetch *rate.Limiter

	closeOnce sync.Once
	closeErr  error
}

func newGoogleVerifier(cfg Config, hc *http.Client, now func() time.Time, log *slog.Logger) (*googleVerifier, error) {
	// The cache's goroutines live until Stop shuts the cache down; they
	// serve every request, so no request's context may bound them.
	cache, err := jwk.NewCache(context.Background(), httprc.NewClient())
	if err != nil {
		return nil, fmt.Errorf("google key cache: %w", err)
	}
	client := jwk.DefaultHTTPClient()
	if hc != nil {
		client = jwk.WrapHTTPClientDefaults(hc)
	}
	// Registering without waiting: the server starts even when Google is
	// out of reach, and the first sign-in fetches the keys if the
	// background fetch has not.
	if err := cache.Register(context.Background(), cfg.GoogleJWKSURL,
		jwk.WithHTTPClient(client), jwk.WithWaitReady(false)); err != nil {
		_ = cache.Shutdown(context.Background())
		return nil, fmt.Errorf("google key cache: register %s: %w", cfg.GoogleJWKSURL, err)
	}
	return &googleVerifier{
		cache:    cache,
		url:      cfg.GoogleJWKSURL,
		clientID: cfg.GoogleClientID,
		issuers:  cfg.GoogleIssuers,
		skew:     cfg.ClockSkew,
		now:      now,
		log:      log,
		refetch:  rate.NewLimiter(rate.Every(cfg.JWKSRefetchInterval), 1),
	}, nil
}

// close shuts the key cache down; later calls return the first result.
func (v *googleVerifier) close(ctx context.Context) error {
	v.closeOnce.Do(func() {
		if err := v.cache.Shutdown(ctx); err != nil {
			v.closeErr = fmt.Errorf("shut down google key cache: %w", err)
		}
	})
	return v.closeErr
}

// verify checks the signature first and the claims only then, so a forged
// token learns nothing about which of its claims would pass.
func (v *googleVerifier) verify(ctx context.Context, credential string) (googleClaims, error) {
	raw := []byte(credential)
	msg, err := jws.Parse(raw, jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return googleClaims{}, refuseWith(ReasonMalformed, err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if alg, ok := hdr.Algorithm(); !ok || alg != jwa.RS256() {
		return googleClaims{}, refuse(ReasonAlgorithm)
	}
	kid, ok := hdr.KeyID()
	if !ok || kid == "" {
		return googleClaims{}, refuse(ReasonUnknownKey)
	}
	key, err := v.key(ctx, kid)
	if err != nil {
		return googleClaims{}, err
	}
	if _, err := jws.Verify(raw, jws.WithKey(jwa.RS256(), key)); err != nil {
		return googleClaims{}, refuseWith(ReasonBadSignature, err)
	}
	// The bytes were verified just above; parsing them again without a
	// key only reads the claims.
	tok, err := jwt.ParseInsecure(raw)
	if err != nil {
		return googleClaims{}, refuseWith(ReasonMalformed, err)
	}
	if iss, _ := tok.Issuer(); !slices.Contains(v.issuers, iss) {
		return googleClaims{}, refuse(ReasonWrongIssuer)
	}
	err = jwt.Validate(tok,
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithAcceptableSkew(v.skew),
		jwt.WithAudience(v.clientID),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.TokenExpiredError()):
		return googleClaims{}, refuse(ReasonExpired)
	case errors.Is(err, jwt.InvalidAudienceError()):
		return googleClaims{}, refuse(ReasonWrongAudience)
	case errors.Is(err, jwt.InvalidIssuedAtError()), errors.Is(err, jwt.TokenNotYetValidError()):
		return googleClaims{}, refuse(ReasonNotYetValid)
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return googleClaims{}, refuse(ReasonMissingClaim)
	default:
		return googleClaims{}, refuseWith(ReasonMalformed, err)
	}

	// OpenID Connect Core 3.1.3.7: a token for several audiences must name
	// the party it was issued to (azp), and any azp must be this client,
	// or a token another application obtained could sign in here.
	// An azp that is not a string names no client, so it is not this one.
	aud, _ := tok.Audience()
	var azp string
	hasAZP := tok.Has("azp")
	if (len(aud) > 1 && !hasAZP) || (hasAZP && (tok.Get("azp", &azp) != nil || azp != v.clientID)) {
		return googleClaims{}, refuse(ReasonWrongAudience)
	}

	// Accounts are found by subject: an empty one would make every such
	// token the same person. OpenID Connect Core 2 bounds it to 255
	// characters.
	var c googleClaims
	c.Subject, _ = tok.Subject()
	if c.Subject == "" {
		return googleClaims{}, refuse(ReasonMissingClaim)
	}
	if len(c.Subject) > 255 {
		return googleClaims{}, refuse(ReasonMalformed)
	}
	var email string
	if err := tok.Get("email", &email); err != nil || strings.TrimSpace(email) == "" {
		return googleClaims{}, refuse(ReasonMissingClaim)
	}
	c.Email = email
	if !emailVerified(tok) {
		return googleClaims{}, refuse(ReasonEmailNotVerified)
	}
	// Name and picture are optional: Google leaves them out when the
	// profile scope was not granted.
	_ = tok.Get("name", &c.Name)
	_ = tok.Get("picture", &c.Picture)
	c.Picture = cleanAvatar(c.Picture)
	return c, nil
}

// emailVerified reads email_verified, which Google sends as a boolean and
// some older tokens carried as the string "true".
func emailVerified(tok jwt.Token) bool {
	var v any
	if err := tok.Get("email_verified", &v); err != nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	default:
		return false
	}
}

// key returns the public key with the given id. A key id missing from the
// cached set may be a key Google rotated in since the last fetch, so it
// triggers a fetch, at most one per JWKSRefetchInterval.
func (v *googleVerifier) key(ctx context.Context, kid string) (jwk.Key, error) {
	set, lookupErr := v.cache.Lookup(ctx, v.url)
	if lookupErr == nil {
		if k, ok := set.LookupKeyID(kid); ok {
			return k, nil
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// Another request may have fetched while this one waited.
	if set, err := v.cache.Lookup(ctx, v.url); err == nil {
		if k, ok := set.LookupKeyID(kid); ok {
			return k, nil
		}
		lookupErr = nil
	}
	if !v.refetch.AllowN(v.now(), 1) {
		if lookupErr != nil {
			return nil, errs.Retry(errs.ErrUnavailable, "Google's signing keys are not available yet; try again shortly.", v.refetchDelay())
		}
		return nil, refuse(ReasonUnknownKey)
	}
	set, err := v.cache.Refresh(ctx, v.url)
	if err != nil {
		v.log.WarnContext(ctx, "fetch google signing keys", slog.Any("error", err))
		return nil, errs.Retry(errs.ErrUnavailable, "Google's signing keys could not be fetched; try again shortly.", v.refetchDelay())
	}
	if k, ok := set.LookupKeyID(kid); ok {
		return k, nil
	}
	return nil, refuse(ReasonUnknownKey)
}

func (v *googleVerifier) refetchDelay() time.Duration {
	return time.Duration(float64(time.Second) / float64(v.refetch.Limit()))
}
