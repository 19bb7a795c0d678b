// Package cairn holds the error vocabulary that cairn's servers and clients
// share: sentinel errors for every outcome a request can have and the typed
// errors that carry the facts (how many replicas were needed and how many
// answered). They cross the wire as codes (see internal/wire) and come back as
// these same values, so errors.Is and errors.As work on either side.
//
// The package imports nothing from the project and must never grow logic
// beyond describing errors.
package cairn
