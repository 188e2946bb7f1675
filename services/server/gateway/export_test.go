package gateway

// DropSubscriptions unsubscribes the running gateway's subscriptions, as
// losing them would end them, and returns how many it dropped.
func (g *Gateway) DropSubscriptions() int {
	g.subsMu.Lock()
	defer g.subsMu.Unlock()
	for _, sub := range g.subs {
		_ = sub.Unsubscribe()
	}
	return len(g.subs)
}
