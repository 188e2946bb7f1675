// Package eventtest checks, in each aggregate's tests, the promises events make
// to the event store: a stable, unique, namespaced type name, explicit JSON
// tags on every field, an origin (At, Actor), and lossless JSON round trips.
package eventtest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Event is the shape every aggregate's Event interface has.
type Event interface{ EventType() string }

// Conformance checks the registration list of one aggregate: each event is a
// struct value with a unique type name starting with prefix, every field
// (also in nested structs) has an explicit json tag, and it carries At and
// Actor.
func Conformance[E Event](t testing.TB, prefix string, events []E) {
	t.Helper()
	if len(events) == 0 {
		t.Fatal("no events registered")
	}
	seen := map[string]bool{}
	for _, e := range events {
		name := e.EventType()
		if !strings.HasPrefix(name, prefix) || len(name) == len(prefix) {
			t.Errorf("%T: event type %q is not namespaced by %q", e, name, prefix)
		}
		if seen[name] {
			t.Errorf("%T: event type %q registered twice", e, name)
		}
		seen[name] = true
		rt := reflect.TypeOf(e)
		if rt.Kind() != reflect.Struct {
			t.Errorf("%T: register the struct value, not %s", e, rt.Kind())
			continue
		}
		checkTags(t, rt, rt.Name())
		if f, ok := rt.FieldByName("At"); !ok || f.Type != reflect.TypeFor[time.Time]() || f.Tag.Get("json") != "at" {
			t.Errorf("%T: want field At time.Time `json:\"at\"`", e)
		}
		if f, ok := rt.FieldByName("Actor"); !ok || f.Type.Kind() != reflect.String || f.Tag.Get("json") != "actor" {
			t.Errorf("%T: want field Actor string `json:\"actor\"`", e)
		}
	}
}

// checkTags requires a json tag on every field of rt and of the structs it
// contains (except time.Time, which marshals itself), because a Go field
// name in a stored payload would make a rename a schema change.
func checkTags(t testing.TB, rt reflect.Type, path string) {
	t.Helper()
	for f := range rt.Fields() {
		if !f.IsExported() {
			t.Errorf("%s.%s: events must not have unexported fields (they are lost in JSON)", path, f.Name)
			continue
		}
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if tag == "" || tag == "-" {
			t.Errorf("%s.%s: missing explicit json tag", path, f.Name)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			checkTags(t, ft, path+"."+f.Name)
		}
	}
}

// RoundTrip marshals e to JSON, decodes it into a fresh value of the same
// type, and fails unless the result equals e: what the store keeps must be
// exactly what Decide produced.
func RoundTrip[E Event](t testing.TB, e E) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal %T: %v", e, err)
	}
	fresh := reflect.New(reflect.TypeOf(e))
	if err := json.Unmarshal(data, fresh.Interface()); err != nil {
		t.Fatalf("unmarshal %T from %s: %v", e, data, err)
	}
	if got := fresh.Elem().Interface(); !reflect.DeepEqual(got, any(e)) {
		t.Errorf("%T does not survive JSON:\n got  %#v\n want %#v\n json %s", e, got, e, data)
	}
}
