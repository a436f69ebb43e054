package portal

import (
	"testing"
	"time"
)

// TestRowOf places requests in the queue by their due date in calendar
// days (UTC), and their answer.
func TestRowOf(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		status  string
		due     time.Time
		urgency string
		days    int64
	}{
		{"due two days ago", requestVerified, now.Add(-48 * time.Hour), urgencyOverdue, -2},
		{"due this morning", requestProcessing, now.Add(-6 * time.Hour), urgencyOverdue, 0},
		{"due tonight", requestVerified, now.Add(6 * time.Hour), urgencySoon, 0},
		{"due in a week", requestReceived, now.AddDate(0, 0, 7), urgencySoon, 7},
		{"due in eight days", requestVerified, now.AddDate(0, 0, 8), urgencyLater, 8},
		{"failed and late", requestFailed, now.AddDate(0, 0, -1), urgencyOverdue, -1},
		{"completed late", requestCompleted, now.AddDate(0, 0, -1), urgencyAnswered, -1},
		{"rejected", requestRejected, now.AddDate(0, 1, 0), urgencyAnswered, 31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rowOf(QueuedRequest{PrivacyRequest: PrivacyRequest{Status: tt.status, DueAt: tt.due}}, now)
			if r.Urgency != tt.urgency || r.DaysLeft != tt.days {
				t.Fatalf("rowOf = %s, %d days; want %s, %d", r.Urgency, r.DaysLeft, tt.urgency, tt.days)
			}
		})
	}
}

// TestOrderQueue puts unanswered requests first by urgency and due date,
// then the answered ones newest first.
func TestOrderQueue(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)
	row := func(id, status string, received time.Time, dueDays int) queueRow {
		return rowOf(QueuedRequest{PrivacyRequest: PrivacyRequest{ID: id, Status: status, ReceivedAt: received, DueAt: now.AddDate(0, 0, dueDays)}}, now)
	}
	rows := []queueRow{
		row("answered-old", requestCompleted, now.AddDate(0, -2, 0), -30),
		row("later", requestVerified, now, 30),
		row("answered-new", requestRejected, now.AddDate(0, 0, -1), 29),
		row("soon", requestReceived, now, 3),
		row("overdue-less", requestFailed, now, -1),
		row("overdue-most", requestVerified, now, -5),
		row("sooner", requestVerified, now, 1),
	}
	orderQueue(rows)
	want := []string{"overdue-most", "overdue-less", "sooner", "soon", "later", "answered-new", "answered-old"}
	for i, r := range rows {
		if r.ID != want[i] {
			var got []string
			for _, r := range rows {
				got = append(got, r.ID)
			}
			t.Fatalf("order = %v, want %v", got, want)
		}
	}
}
