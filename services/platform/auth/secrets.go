package auth

// CanReadSecrets reports whether p may see secret values that reads
// otherwise hide, such as the sensitive outputs of a stack. It is the one
// place that decides it: today administrators may, and other tokens may not.
func CanReadSecrets(p Principal) bool { return p.IsAdmin() }
