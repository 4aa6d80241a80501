// The AWS secrets engine as an external OpenBao plugin, for the dev and test servers only.
//
// OpenBao 2.x has no built-in AWS engine, and its own plugin (openbao-plugin-secrets-aws) is not served by
// the Go module proxy reachable here. Vault v1.14.0 (MPL-2.0, the release OpenBao was forked from) has
// the engine as builtin/logical/aws; this wraps it in the plugin protocol both servers speak.
// `foureyes tools` builds it pinned by go.sum into .tools/plugins.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/logical/aws"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		hclog.New(nil).Error("bad flags", "error", err)
		os.Exit(1)
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: aws.Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	}); err != nil {
		hclog.New(nil).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}
