package statebackend

import (
	"errors"
	"reflect"
	"testing"
)

// A state file as terraform 1.x writes it: two managed resources (one with
// two instances), a data source, and outputs of several types.
const contentsState = `{
  "version": 4, "terraform_version": "1.11.4", "serial": 3, "lineage": "l",
  "outputs": {
    "url": {"value": "https://example.com", "type": "string"},
    "password": {"value": "hunter2", "type": "string", "sensitive": true},
    "ports": {"value": [80, 443], "type": ["list", "number"]}
  },
  "resources": [
    {"mode": "managed", "type": "terraform_data", "name": "a", "instances": [{"attributes": {}}]},
    {"mode": "managed", "type": "terraform_data", "name": "b", "instances": [{"index_key": 0}, {"index_key": 1}]},
    {"mode": "data", "type": "terraform_remote_state", "name": "c", "instances": [{"attributes": {}}]}
  ],
  "check_results": null
}`

func TestStateContents(t *testing.T) {
	cases := []struct {
		name      string
		state     string
		outputs   []string
		sensitive []string
		resources int
	}{
		{"outputs and resources", contentsState, []string{"password", "ports", "url"}, []string{"password"}, 3},
		{"an empty state", `{"version": 4, "serial": 1, "lineage": "l", "outputs": {}, "resources": []}`, nil, nil, 0},
		{"a state after a destroy", `{"version": 4, "serial": 9, "lineage": "l", "outputs": {}, "resources": [
			{"mode": "managed", "type": "terraform_data", "name": "a", "instances": []}]}`, nil, nil, 0},
		{"no outputs or resources members", `{"version": 4, "serial": 1, "lineage": "l"}`, nil, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseContents([]byte(tc.state))
			if err != nil {
				t.Fatal(err)
			}
			var names, sensitive []string
			for _, o := range c.outputs() {
				names = append(names, o.Name)
				if o.Sensitive {
					sensitive = append(sensitive, o.Name)
				}
			}
			if !reflect.DeepEqual(names, tc.outputs) || !reflect.DeepEqual(sensitive, tc.sensitive) {
				t.Errorf("outputs %v (sensitive %v), want %v (%v)", names, sensitive, tc.outputs, tc.sensitive)
			}
			if n := c.managedResources(); n != tc.resources {
				t.Errorf("%d managed resources, want %d", n, tc.resources)
			}
		})
	}
	c, _ := parseContents([]byte(contentsState))
	ports := c.outputs()[1]
	if string(ports.Value) != "[80, 443]" || string(ports.Type) != `["list", "number"]` {
		t.Errorf("ports: value %s, type %s: want them as the file has them", ports.Value, ports.Type)
	}
	if _, err := parseContents([]byte(`{"outputs": []}`)); !errors.Is(err, ErrInvalidState) {
		t.Errorf("outputs as an array: %v, want ErrInvalidState", err)
	}
}
