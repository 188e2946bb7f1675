package eventstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// Upcaster turns a payload stored at schema version From into version From+1.
type Upcaster struct {
	From int
	Up   func(json.RawMessage) (json.RawMessage, error)
}

type registration struct {
	name      string
	version   int
	typ       reflect.Type
	upcasters map[int]Upcaster // keyed by From
}

// Registry maps stable event type names to Go types and schema versions.
// Names are explicit (never derived from Go type names) so a rename of a Go
// type cannot change what is stored.
type Registry struct {
	mu     sync.RWMutex
	byName map[string]*registration
	byType map[reflect.Type]*registration
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*registration{}, byType: map[reflect.Type]*registration{}}
}

// Register maps name to the Go type of prototype (a struct value) at the
// given current schema version. upcasters must cover every version from 1 to
// version-1 so that old payloads can be read.
func (r *Registry) Register(name string, version int, prototype any, upcasters ...Upcaster) error {
	if name == "" || !streamIDPattern.MatchString(name) {
		return fmt.Errorf("register event type %q: use letters, digits, '_' or '-'", name)
	}
	if version < 1 {
		return fmt.Errorf("register event type %s: schema version %d must be >= 1", name, version)
	}
	t := reflect.TypeOf(prototype)
	if t == nil {
		return fmt.Errorf("register event type %s: prototype is nil", name)
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	ups := map[int]Upcaster{}
	for _, u := range upcasters {
		if u.Up == nil || u.From < 1 || u.From >= version {
			return fmt.Errorf("register event type %s: upcaster from %d does not fit schema version %d", name, u.From, version)
		}
		ups[u.From] = u
	}
	for v := 1; v < version; v++ {
		if _, ok := ups[v]; !ok {
			return fmt.Errorf("register event type %s: no upcaster from version %d", name, v)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("register event type %s: already registered", name)
	}
	if other, dup := r.byType[t]; dup {
		return fmt.Errorf("register event type %s: Go type %s is already registered as %s", name, t, other.name)
	}
	reg := &registration{name: name, version: version, typ: t, upcasters: ups}
	r.byName[name] = reg
	r.byType[t] = reg
	return nil
}

// MustRegister is Register for wiring code, where a mistake is a programming error.
func (r *Registry) MustRegister(name string, version int, prototype any, upcasters ...Upcaster) {
	if err := r.Register(name, version, prototype, upcasters...); err != nil {
		panic(err)
	}
}

// Named is implemented by domain events, which carry their stable type name.
type Named interface{ EventType() string }

// RegisterNamed registers each event at schema version 1 under its EventType name.
func (r *Registry) RegisterNamed(events ...Named) error {
	for _, e := range events {
		if err := r.Register(e.EventType(), 1, e); err != nil {
			return err
		}
	}
	return nil
}

// TypeOf returns the registered name and schema version of an event value.
func (r *Registry) TypeOf(event any) (name string, version int, err error) {
	t := reflect.TypeOf(event)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	r.mu.RLock()
	reg, ok := r.byType[t]
	r.mu.RUnlock()
	if !ok {
		return "", 0, fmt.Errorf("%w: Go type %v is not registered", ErrUnknownEventType, t)
	}
	return reg.name, reg.version, nil
}

// Known reports whether name is a registered event type.
func (r *Registry) Known(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.byName[name]
	return ok
}

// Names lists the registered event type names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Decode upcasts e's payload to the current schema version and unmarshals it
// into a new value of the registered Go type (returned as a value, not a
// pointer). An unregistered type is an error matching ErrUnknownEventType.
func (r *Registry) Decode(e Event) (any, error) {
	r.mu.RLock()
	reg, ok := r.byName[e.Type]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("decode event %s at position %d: %w %q", e.ID, e.Position, ErrUnknownEventType, e.Type)
	}
	if e.SchemaVersion > reg.version {
		return nil, fmt.Errorf("decode event %s: schema version %d of %s is newer than this build knows (%d)", e.ID, e.SchemaVersion, e.Type, reg.version)
	}
	payload := e.Payload
	for v := e.SchemaVersion; v < reg.version; v++ {
		up, err := reg.upcasters[v].Up(payload)
		if err != nil {
			return nil, fmt.Errorf("decode event %s: upcast %s from version %d: %w", e.ID, e.Type, v, err)
		}
		payload = up
	}
	ptr := reflect.New(reg.typ)
	if err := json.Unmarshal(payload, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode event %s (%s): %w", e.ID, e.Type, err)
	}
	return ptr.Elem().Interface(), nil
}
