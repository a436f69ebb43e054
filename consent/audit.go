package consent

import (
	"context"
	"fmt"

	"github.com/stewardhq/steward/internal/module"
)

// CheckProof is the name of the audit check that holds consent to its
// proof.
const CheckProof = "consent_proof"

// AuditChecks holds consent to its proof for the DPO's audit: every
// current choice must point at its row of the proof log, and every proof
// row must still be tied to a subject, by id or, after an erasure, by
// keyed hash.
func (m *Module) AuditChecks(ctx context.Context) ([]module.AuditCheck, error) {
	orphans, err := m.store.unproved(ctx)
	if err != nil {
		return nil, err
	}
	unbound, err := m.store.unboundProofs(ctx)
	if err != nil {
		return nil, err
	}
	states, err := m.store.countStates(ctx)
	if err != nil {
		return nil, err
	}
	c := module.AuditCheck{Name: CheckProof, Summary: fmt.Sprintf("%d current choices, each with its proof", states)}
	for _, s := range orphans {
		c.Findings = append(c.Findings, module.AuditFinding{What: "consent without proof", Where: "consent_state/" + s.ID,
			Detail: fmt.Sprintf("the %s choice points at proof %q, which consent_log does not hold", s.Purpose, s.ProofID)})
	}
	for _, p := range unbound {
		c.Findings = append(c.Findings, module.AuditFinding{What: "proof without subject", Where: "consent_log/" + p.ID,
			Detail: fmt.Sprintf("the %s proof has neither a subject id nor a subject hash", p.Purpose)})
	}
	if len(c.Findings) > 0 {
		c.Summary = fmt.Sprintf("%d current choices; %d without proof, %d proofs without subject", states, len(orphans), len(unbound))
	}
	return []module.AuditCheck{c}, nil
}
