// The Teams conversation reference the bot receives when its app is installed (a `conversationUpdate`
// activity), as the gateway stores it for the orchestrator. The orchestrator sends the bot's Bot Connector
// token to `serviceUrl`, so it uses a reference only when the gateway signed it (the gateway accepts the
// activity only with a valid Bot Framework token whose `serviceurl` claim names that URL): a reference
// planted in Temporal by someone else could otherwise collect the token. The signature has its own domain
// prefix, so a signed reference can never pass as a signed approval claim, nor the reverse.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson, type SigningKey } from './approval-signature.ts';

ed.hashes.sha512 = sha512;

const DOMAIN = 'foureyes teams-conversation v1\n';

export interface TeamsConversationReference {
  v: 1;
  /** Teams conversation (channel or chat) id, e.g. `19:…@thread.tacv2`. */
  conversationId: string;
  /** The Bot Connector endpoint for this conversation (from the Microsoft-signed token). */
  serviceUrl: string;
  tenantId: string;
  /** The bot's account in the conversation (`28:<app id>`). */
  botId: string;
  conversationType?: string;
  /** False once the app was removed from the conversation. */
  installed: boolean;
  /** When the gateway received it (ISO time). */
  at: string;
}

export interface SignedTeamsConversation {
  reference: TeamsConversationReference;
  signature: string;
  keyId: string;
}

function message(reference: TeamsConversationReference): Uint8Array {
  return utf8ToBytes(DOMAIN + canonicalJson(reference));
}

export function signTeamsConversation(reference: TeamsConversationReference, key: SigningKey): SignedTeamsConversation {
  return {
    reference,
    signature: bytesToHex(ed.sign(message(reference), hexToBytes(key.privateKey))),
    keyId: key.publicKey,
  };
}

export function verifyTeamsConversation(
  signed: SignedTeamsConversation | undefined,
  trustedKeys: readonly string[],
): boolean {
  try {
    if (!signed?.reference || typeof signed.signature !== 'string' || !/^[0-9a-f]{128}$/.test(signed.signature))
      return false;
    const keyId = String(signed.keyId).toLowerCase();
    if (!trustedKeys.includes(keyId)) return false;
    return ed.verify(hexToBytes(signed.signature), message(signed.reference), hexToBytes(keyId));
  } catch {
    return false;
  }
}

/** The newest reference for `conversationId` that the gateway signed with a trusted key, if any. */
export function currentConversation(
  stored: readonly SignedTeamsConversation[],
  conversationId: string,
  trustedKeys: readonly string[],
): TeamsConversationReference | undefined {
  const candidates = stored
    .filter((s) => s?.reference?.conversationId === conversationId && verifyTeamsConversation(s, trustedKeys))
    .map((s) => s.reference)
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return candidates.at(-1);
}
