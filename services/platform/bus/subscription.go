package bus

import "github.com/nats-io/nats.go"

// WatchClosed returns a channel that receives the subject of the first of
// subs to close: unsubscribed, drained, or closed with its connection. A
// long-running loop selects on it and fails, so that its supervisor
// subscribes again, rather than wait forever on a subscription that can no
// longer deliver. It takes over the subscriptions' closed handlers.
func WatchClosed(subs ...*nats.Subscription) <-chan string {
	closed := make(chan string, 1)
	notify := func(subject string) {
		select {
		case closed <- subject:
		default: // the first one is enough
		}
	}
	for _, s := range subs {
		s.SetClosedHandler(notify)
		// A subscription that closed before its handler was set never calls it.
		if !s.IsValid() {
			notify(s.Subject)
		}
	}
	return closed
}
