// Test support: what a Fabric peer's X.509 MSP sees of SerializedIdentity.id_bytes (msp/mspimpl.go,
// deserializeIdentityInternal): the first PEM block Go's encoding/pem decodes, parsed by crypto/x509.
// Reads id_bytes on stdin, prints the subject OUs, one per line.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
)

func main() {
	data, _ := io.ReadAll(os.Stdin)
	bl, _ := pem.Decode(data)
	if bl == nil {
		fmt.Fprintln(os.Stderr, "could not decode the PEM structure")
		os.Exit(2)
	}
	cert, err := x509.ParseCertificate(bl.Bytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parseCertificate failed:", err)
		os.Exit(3)
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		fmt.Println(ou)
	}
}
