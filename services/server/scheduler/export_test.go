package scheduler

// DropSubscriptions unsubscribes the running scheduler's subscriptions, as
// losing them would end them, and returns how many it dropped.
func (s *Scheduler) DropSubscriptions() int {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	return len(s.subs)
}
