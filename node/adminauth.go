package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnkv/cairn/internal/access"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/node/console"
)

// The admin HTTP port under security: /healthz and /readyz stay open (a
// load balancer or an orchestrator's probe holds no credential); every
// other route (metrics, pprof, the console and its API) wants the token of
// a user with the admin role, as a bearer token or as the password of
// HTTP basic authentication (any user name), so that a browser can ask for
// it and resend it on the console's own calls; and those routes are served
// over TLS only, with the node's certificate (a plain request is
// redirected to https), so the token never crosses the network in the
// clear. Without TLS on the data port (security off) the port is plain
// HTTP and open, as before.

// adminOpen are the routes that need no credential.
var adminOpen = map[string]bool{"/healthz": true, "/readyz": true}

// guardAdmin wraps the admin port's one handler.
func (n *Node) guardAdmin(next http.Handler) http.Handler {
	if n.tls == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if adminOpen[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if r.TLS == nil {
			// A credential must not cross the network in the clear: the
			// rest of the port is served over TLS only (adminlisten.go).
			w.Header().Set("Location", "https://"+r.Host+r.URL.RequestURI())
			http.Error(w, "this admin port serves "+r.URL.Path+" over https only (security is on): https://"+r.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
			return
		}
		status, err := n.adminCredential(r.Header.Get("Authorization"))
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="cairn admin", charset="UTF-8"`)
			}
			http.Error(w, err.Error(), status)
			return
		}
		// The console asks the other members' admin ports on the
		// caller's behalf, with the caller's credential.
		next.ServeHTTP(w, r.WithContext(console.WithAuthorization(r.Context(), r.Header.Get("Authorization"))))
	})
}

var errNoAdminCredential = errors.New("this admin port needs an admin user's token: Authorization: Bearer TOKEN, or the token as the password of basic authentication (cairn user add NAME --role admin --new-token)")

// adminCredential checks an Authorization header and returns the HTTP
// status of a refusal.
func (n *Node) adminCredential(header string) (int, error) {
	token, ok := tokenOf(header)
	if !ok {
		return http.StatusUnauthorized, errNoAdminCredential
	}
	if len(token) > access.MaxTokenLen {
		return http.StatusUnauthorized, errors.New("the token matches no user's")
	}
	id, err := n.identify(transport.Peer{Auth: []byte(token)})
	if err != nil {
		return http.StatusUnauthorized, err
	}
	if u := n.users().users[id.user]; !u.Has(access.RoleAdmin) {
		return http.StatusForbidden, fmt.Errorf("user %s %w %s (needed for the admin port)", id.user, access.ErrNoRole, access.RoleAdmin)
	}
	return http.StatusOK, nil
}

// tokenOf reads a token from "Bearer TOKEN" or "Basic base64(user:TOKEN)".
func tokenOf(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "bearer":
		return rest, rest != ""
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, pass, ok := strings.Cut(string(raw), ":")
		return pass, ok && pass != ""
	}
	return "", false
}
