package eventstore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gantryhq/gantry/eventstore"
)

type renamedV3 struct {
	FullName string `json:"full_name"`
	Source   string `json:"source"`
}

func TestRegistryUpcastsOldPayloads(t *testing.T) {
	reg := eventstore.NewRegistry()
	err := reg.Register("ThingRenamed", 3, renamedV3{},
		eventstore.Upcaster{From: 1, Up: func(p json.RawMessage) (json.RawMessage, error) {
			var v1 struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(p, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]string{"full_name": v1.Name})
		}},
		eventstore.Upcaster{From: 2, Up: func(p json.RawMessage) (json.RawMessage, error) {
			var v2 map[string]string
			if err := json.Unmarshal(p, &v2); err != nil {
				return nil, err
			}
			v2["source"] = "upcast"
			return json.Marshal(v2)
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version int
		payload string
		want    renamedV3
	}{
		{1, `{"name":"a"}`, renamedV3{FullName: "a", Source: "upcast"}},
		{2, `{"full_name":"b"}`, renamedV3{FullName: "b", Source: "upcast"}},
		{3, `{"full_name":"c","source":"new"}`, renamedV3{FullName: "c", Source: "new"}},
	} {
		got, err := reg.Decode(eventstore.Event{Type: "ThingRenamed", SchemaVersion: tc.version, Payload: json.RawMessage(tc.payload)})
		if err != nil {
			t.Fatalf("v%d: %v", tc.version, err)
		}
		if got != tc.want {
			t.Errorf("v%d: got %#v, want %#v", tc.version, got, tc.want)
		}
	}
	if _, err := reg.Decode(eventstore.Event{Type: "ThingRenamed", SchemaVersion: 4, Payload: json.RawMessage(`{}`)}); err == nil {
		t.Error("a payload newer than the build decoded without error")
	}
	if _, err := reg.Decode(eventstore.Event{Type: "Nope", SchemaVersion: 1, Payload: json.RawMessage(`{}`)}); !errors.Is(err, eventstore.ErrUnknownEventType) {
		t.Errorf("unknown type: err = %v", err)
	}
}

func TestRegistryRejectsBadRegistrations(t *testing.T) {
	reg := eventstore.NewRegistry()
	if err := reg.Register("ThingCreated", 1, thingCreated{}); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"duplicate name":     reg.Register("ThingCreated", 1, thingRenamed{}),
		"duplicate Go type":  reg.Register("Other", 1, thingCreated{}),
		"bad name":           reg.Register("a.b", 1, thingRenamed{}),
		"version 0":          reg.Register("V0", 0, thingRenamed{}),
		"missing upcaster":   reg.Register("V2", 2, thingRenamed{}),
		"nil prototype":      reg.Register("Nil", 1, nil),
		"upcaster past head": reg.Register("V1", 1, renamedV3{}, eventstore.Upcaster{From: 1, Up: func(p json.RawMessage) (json.RawMessage, error) { return p, nil }}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if name, v, err := reg.TypeOf(&thingCreated{}); err != nil || name != "ThingCreated" || v != 1 {
		t.Errorf("TypeOf(pointer) = %s, %d, %v", name, v, err)
	}
}
