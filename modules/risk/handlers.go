package risk

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
	"github.com/stewardhq/steward/internal/web"
)

// Page sizes of the list routes.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// ListQuery are the query parameters of GET /v1/rewards and GET
// /v1/risk/abuse-events.
type ListQuery struct {
	// UserID lists another user's items, for roles the access policy lets
	// read them. On /v1/rewards it defaults to the caller; on the abuse
	// log, empty lists every event.
	UserID string `query:"user_id"`
	// Kind keeps only items of one kind ("checkin" or "task" for rewards,
	// a rule such as "rate_limited" for abuse events).
	Kind string `query:"kind"`
	// Limit is the page size, 1 to 200; zero means 50.
	Limit int `query:"limit"`
	// Cursor is the next_cursor of the previous page.
	Cursor string `query:"cursor"`
}

// RewardPage answers GET /v1/rewards.
type RewardPage struct {
	Items []RewardRecord `json:"items"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"next_cursor"`
}

// AbuseEventPage answers GET /v1/risk/abuse-events.
type AbuseEventPage struct {
	Items []AbuseEvent `json:"items"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"next_cursor"`
}

// rewardCategories and abuseCategories are the categories the list
// responses carry; the access check asks about all of them at once.
var (
	rewardCategories = []string{"system.operations", "user.unique_id", "user.security.reward_record"}
	abuseCategories  = []string{"system.operations", "user.unique_id", "user.security.abuse_log"}
)

func (m *Module) mount(r fiber.Router, doc web.Documenter) {
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/risk/abuse-events", Tag: "risk", Auth: true,
		Summary:     "List abuse-prevention events, newest first, for roles allowed to read the abuse log",
		Description: "Filter by `user_id` and `kind`; page with `limit` and the `next_cursor` of the previous page.",
		Query:       ListQuery{},
		Responses:   map[int]any{200: AbuseEventPage{}, 400: nil, 403: nil},
	}, m.abuseEvents)
	if m.rewards == nil {
		m.log.Warn("reward routes not mounted: no rewarder")
		return
	}
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodPost, Path: "/v1/rewards/checkin", Tag: "risk", Auth: true,
		Summary: "Check in for the day's credits",
		Description: "Grants the daily check-in credits once per user and day. A second check-in the same day " +
			"answers 200 with `granted: false` and `next_at`, the start of the next day.",
		Responses: map[int]any{200: CheckInResult{}},
	}, m.checkIn)
	web.Route(r, doc, web.RouteDoc{
		Method: fiber.MethodGet, Path: "/v1/rewards", Tag: "risk", Auth: true,
		Summary:   "List the caller's check-ins and rewards, newest first, or a user's for roles allowed to read them",
		Query:     ListQuery{},
		Responses: map[int]any{200: RewardPage{}, 400: nil, 403: nil},
	}, m.listRewardsHandler)
}

// checkIn answers 200 whether or not credits were granted: a repeated
// check-in is a normal outcome the app shows ("come back at next_at"), not
// a failed request.
func (m *Module) checkIn(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	res, err := m.CheckIn(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	return m.guard.JSON(c, authz.ActionRead, res)
}

// listRewardsHandler lists reward records. The access policy decides: a
// role limited to its own rows gets only the caller's; a role whose grants
// leave the reward data redacted is refused rather than served rows of
// nulls.
func (m *Module) listRewardsHandler(c *fiber.Ctx) error {
	p, q, cur, err := listRequest(c)
	if err != nil {
		return err
	}
	if q.Kind != "" && q.Kind != RewardCheckIn && q.Kind != RewardTask {
		return errs.Invalid("kind", "enum", "The kind must be checkin or task.")
	}
	owner := q.UserID
	if owner == "" {
		owner = p.UserID
	}
	ctx := c.UserContext()
	if err := m.allowList(c, p, owner, rewardCategories, "user.security.reward_record", "your role may not list reward records"); err != nil {
		return err
	}
	rows, err := m.store.listRewards(ctx, owner, q.Kind, cur, q.Limit+1)
	if err != nil {
		return err
	}
	return writePage(m, c, p, rows, q.Limit, func(r RewardRecord) cursor { return cursor{at: r.CreatedAt, id: r.ID} })
}

// abuseEvents lists the abuse log for staff. The log is withheld from its
// subjects (it holds detection signals), so the policy refuses it to the
// user role even for their own events.
func (m *Module) abuseEvents(c *fiber.Ctx) error {
	p, q, cur, err := listRequest(c)
	if err != nil {
		return err
	}
	if err := m.allowList(c, p, q.UserID, abuseCategories, "user.security.abuse_log", "your role may not read the abuse log"); err != nil {
		return err
	}
	ctx := c.UserContext()
	rows, err := m.store.listAbuseEvents(ctx, abuseFilter{userID: q.UserID, kind: q.Kind}, cur, q.Limit+1)
	if err != nil {
		return err
	}
	return writePage(m, c, p, rows, q.Limit, func(e AbuseEvent) cursor { return cursor{at: e.OccurredAt, id: e.ID} })
}

// writePage answers a list request with rows, fetched one beyond limit:
// at most limit of them, as p may see them, with the cursor of the next
// page ("" on the last one), which at gives for a row.
func writePage[T any](m *Module, c *fiber.Ctx, p authz.Principal, rows []T, limit int, at func(T) cursor) error {
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = at(rows[len(rows)-1]).String()
	}
	items, err := m.guard.View(c.UserContext(), p, authz.ActionList, rows)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": next})
}

// allowList asks the policy whether p may list data of categories about
// owner, and refuses when the category that is the point of the list
// (core) would be redacted: rows of nulls answer nothing.
func (m *Module) allowList(c *fiber.Ctx, p authz.Principal, owner string, categories []string, core, refusal string) error {
	d, err := m.guard.Check(c.UserContext(), p, authz.ActionList, owner, categories)
	if err != nil {
		return err
	}
	if slices.Contains(d.Redact, core) {
		return errs.E(errs.ErrForbidden, refusal)
	}
	return nil
}

// listRequest reads a list request: the signed-in caller, then the list
// query parameters, checked.
func listRequest(c *fiber.Ctx) (authz.Principal, ListQuery, cursor, error) {
	p, err := authz.Require(c)
	if err != nil {
		return p, ListQuery{}, cursor{}, err
	}
	q, cur, err := parseList(c)
	return p, q, cur, err
}

// parseList reads and checks the list query parameters.
func parseList(c *fiber.Ctx) (ListQuery, cursor, error) {
	var q ListQuery
	if err := c.QueryParser(&q); err != nil {
		return q, cursor{}, errs.Invalid("query", "format", "The query parameters could not be read.")
	}
	if q.Limit == 0 {
		q.Limit = defaultPageSize
	}
	if q.Limit < 1 || q.Limit > maxPageSize {
		return q, cursor{}, errs.Invalid("limit", "range", "The limit must be from 1 to 200.")
	}
	cur, err := parseCursor(q.Cursor)
	if err != nil {
		return q, cursor{}, err
	}
	return q, cur, nil
}
