package assets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"
)

// signature is the hex HMAC-SHA256 over the asset id, the variant and the
// expiry, each closed by a NUL byte so no field can run into the next.
func (m *Module) signature(assetID, variant string, exp int64) string {
	mac := hmac.New(sha256.New, m.cfg.SigningKey)
	mac.Write([]byte(assetID))
	mac.Write([]byte{0})
	mac.Write([]byte(variant))
	mac.Write([]byte{0})
	mac.Write([]byte(strconv.FormatInt(exp, 10)))
	mac.Write([]byte{0})
	return hex.EncodeToString(mac.Sum(nil))
}

// SignedURL returns a path (with query) that downloads a variant of the
// asset without a session until it expires, and the expiry. It does not
// check that the asset exists: a URL for a missing asset answers 404.
func (m *Module) SignedURL(assetID, variant string) (string, time.Time) {
	exp := m.now().Add(m.cfg.URLTTL).Truncate(time.Second)
	q := url.Values{}
	if variant != VariantOriginal {
		q.Set("variant", variant)
	}
	q.Set("exp", strconv.FormatInt(exp.Unix(), 10))
	q.Set("sig", m.signature(assetID, variant, exp.Unix()))
	return "/v1/assets/" + url.PathEscape(assetID) + "/download?" + q.Encode(), exp.UTC()
}

// verify reports whether sig is valid for the asset, variant and expiry
// and the expiry has not passed.
func (m *Module) verify(assetID, variant string, exp int64, sig string) bool {
	if m.now().Unix() > exp {
		return false
	}
	want := m.signature(assetID, variant, exp)
	return hmac.Equal([]byte(want), []byte(sig))
}
