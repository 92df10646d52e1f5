package netns

// EtcView returns the overlay of the namespace called name with its shadow
// directories in place, ready to mount: what a login and a sync use. It is
// nil, with a nil error, when the namespace has no /etc directory.
func EtcView(name string) (*Overlay, error) {
	o, err := LoadOverlay(name)
	if err != nil || o == nil {
		return nil, err
	}
	if err := o.Prepare(); err != nil {
		return nil, err
	}
	return o, nil
}

// CheckedEtcView returns the overlay of the namespace called name as
// EtcView would, but writes nothing: its shadow directories are only
// checked (CheckShadows), for `netns-session check` to find what would deny
// a login.
func CheckedEtcView(name string) (*Overlay, error) {
	o, err := LoadOverlay(name)
	if err != nil || o == nil {
		return nil, err
	}
	if err := o.CheckShadows(); err != nil {
		return nil, err
	}
	return o, nil
}
