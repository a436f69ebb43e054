package datamap

import (
	"encoding/json"
	"fmt"
)

// Processing holds the facts of the record of processing activities that
// the data map cannot see in the stores: who the controller is, who
// receives data, where it goes and how it is protected.
type Processing struct {
	Controller       Contact     `json:"controller"`
	DPO              Contact     `json:"dpo"`
	DataSubjects     []string    `json:"data_subjects"`
	Recipients       []Recipient `json:"recipients"`
	SecurityMeasures []string    `json:"security_measures"`
}

// Contact names a party and how to reach it.
type Contact struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

// Recipient is a processor or third party that receives personal data.
type Recipient struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Purpose    string   `json:"purpose"`
	Categories []string `json:"categories"`
	Country    string   `json:"country"`
	// Transfer names the safeguard of a transfer outside the EEA (Art. 46),
	// empty when the data stays inside.
	Transfer string `json:"transfer,omitempty"`
}

// ParseProcessing decodes and checks the processing facts.
func ParseProcessing(raw []byte) (Processing, error) {
	var p Processing
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("processing facts: %w", err)
	}
	switch {
	case p.Controller.Name == "" || p.Controller.Contact == "":
		return p, fmt.Errorf("processing facts: controller needs a name and a contact")
	case len(p.DataSubjects) == 0:
		return p, fmt.Errorf("processing facts: no data subjects")
	case len(p.SecurityMeasures) == 0:
		return p, fmt.Errorf("processing facts: no security measures")
	}
	for i, r := range p.Recipients {
		if r.Name == "" || r.Purpose == "" || len(r.Categories) == 0 {
			return p, fmt.Errorf("processing facts: recipient %d needs a name, a purpose and categories", i)
		}
	}
	return p, nil
}
