package privacy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/governance/datamap"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/policies"
)

// PreviewItem is what an erasure would do to the items of one category in
// one way: delete, anonymize or keep them, with the policy's reason and,
// for kept and anonymized data, how long they stay.
type PreviewItem struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	// Action is delete, anonymize or keep.
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Until is the policy's rule for what stays ("P10Y from order_paid").
	Until string `json:"until,omitempty"`
	Items int64  `json:"items"`
}

// ErasurePreview says, before anything is erased, what an erasure of the
// principal's own account would do now: for each category of which
// something is held about them (Holdings), the items it would delete,
// anonymize or keep, by the decisions the erasure itself follows, the
// policy's for each column of the data map. Items in a table whose rows
// go whole go with them; items the modules keep outside the stores follow
// their category's decision in the SQL store.
func (m *Module) ErasurePreview(ctx context.Context, p authz.Principal) ([]PreviewItem, error) {
	s, err := m.ownSubject(ctx, p)
	if err != nil {
		return nil, err
	}
	return m.previewOf(ctx, s)
}

// previewOf says what an erasure of s would do now.
func (m *Module) previewOf(ctx context.Context, s module.SubjectRef) ([]PreviewItem, error) {
	// One data map for the counts and the decisions, so both describe
	// the same stores.
	dm, err := m.settledMap(ctx)
	if err != nil {
		return nil, err
	}
	held, err := m.holdingsIn(ctx, dm, s)
	if err != nil {
		return nil, err
	}
	// The decision of a category in a table, and a category's decision in
	// the SQL store for what modules keep.
	type place struct{ store, table, category string }
	decided := map[place]policies.ErasureDecision{}
	sqlDecision := map[string]policies.ErasureDecision{}
	for _, tp := range plan(dm) {
		for _, c := range tp.columns {
			if !c.Personal {
				continue
			}
			d := c.Erasure
			if tp.mode == modeDelete {
				// The row goes, and every column with it.
				d = policies.ErasureDecision{Category: c.Category, Action: actionDelete, Reason: c.Erasure.Reason}
			}
			k := place{tp.store, tp.table, c.Category}
			if _, ok := decided[k]; !ok {
				decided[k] = d
			}
			if _, ok := sqlDecision[c.Category]; !ok && tp.store == datamap.StoreSQL {
				sqlDecision[c.Category] = c.Erasure
			}
		}
	}
	type group struct{ category, action, reason, until string }
	sums := map[group]*PreviewItem{}
	var order []group
	for _, h := range held {
		for _, src := range h.Sources {
			d, ok := decided[place{src.Store, src.Table, h.Category}]
			if !ok {
				d, ok = sqlDecision[h.Category]
			}
			if !ok {
				// Nothing decides it: the erasure reviews it, and so
				// does the preview.
				d = policies.ErasureDecision{Action: policies.ActionReview}
			}
			g := group{h.Category, d.Action, d.Reason, d.Until}
			it, ok := sums[g]
			if !ok {
				it = &PreviewItem{Category: h.Category, Name: h.Name, Action: d.Action, Reason: d.Reason, Until: d.Until}
				sums[g] = it
				order = append(order, g)
			}
			it.Items += src.Items
		}
	}
	out := make([]PreviewItem, 0, len(order))
	for _, g := range order {
		out = append(out, *sums[g])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Action != out[j].Action {
			return out[i].Action < out[j].Action
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// CheckRecentSignIn answers nil when the principal may request their own
// erasure now, and a Forbidden error saying to sign in again when their
// sign-in is older than Config.RecentSignIn.
func (m *Module) CheckRecentSignIn(ctx context.Context, p authz.Principal) error {
	return m.checkRecentSignIn(ctx, p)
}

// StatusTTL is how long a request's status token shows it.
const StatusTTL = 90 * 24 * time.Hour

// StatusToken returns a token that shows request id's status and, for an
// erasure, its certificate, without a session, until it expires: the
// person whose account an erasure deletes has no session left to show it
// with. The token is "<expiry>.<signature>".
func (m *Module) StatusToken(id string) string {
	exp := m.now().Add(StatusTTL).Unix()
	return strconv.FormatInt(exp, 10) + "." + m.statusSignature(id, exp)
}

// ShowByToken returns a request and its trail when token is one of its
// unexpired status tokens; otherwise a NotFound error, as for a request
// that does not exist.
func (m *Module) ShowByToken(ctx context.Context, id, token string) (RequestView, error) {
	if !m.verifyStatus(id, token) {
		return RequestView{}, errs.E(errs.ErrNotFound, "No such request, or the link has expired.")
	}
	req, err := m.load(ctx, id)
	if err != nil {
		return RequestView{}, err
	}
	events, err := m.Events(ctx, req.ID)
	if err != nil {
		return RequestView{}, err
	}
	v := m.view(req, events)
	// The token shows the status; the package needs the account.
	v.DownloadURL, v.DownloadExpiresAt = "", nil
	return v, nil
}

// verifyStatus reports whether token is an unexpired status token of
// request id.
func (m *Module) verifyStatus(id, token string) bool {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return false
	}
	exp, err := strconv.ParseInt(token[:i], 10, 64)
	if err != nil || m.now().Unix() > exp {
		return false
	}
	return hmac.Equal([]byte(token[i+1:]), []byte(m.statusSignature(id, exp)))
}

func (m *Module) statusSignature(id string, exp int64) string {
	mac := hmac.New(sha256.New, m.cfg.SigningKey)
	mac.Write([]byte("privacy-status\x00"))
	mac.Write([]byte(id))
	mac.Write([]byte{0})
	mac.Write([]byte(strconv.FormatInt(exp, 10)))
	mac.Write([]byte{0})
	return hex.EncodeToString(mac.Sum(nil))
}
