#!/bin/sh
# Generates signatures.json: Appwrite webhook signatures computed outside Go, with openssl, the
# way Appwrite computes them: base64(HMAC-SHA1(key, URL + body)), the key used as raw bytes.
#
# Each case says which URL string was configured in appwrite-sync (configured_url, keys) and
# which URL string and key the Appwrite server signed with (signed_url, key), and whether the
# verifier must accept it (valid). The rawurldecoded URLs are decoded here by hand, so the
# fixtures also check the Go rawurldecode.
#
# Bodies are written with printf '%s' so the files hold exactly these bytes (no trailing
# newline), PHP json_encode style: "/" as "\/", non-ASCII as "\uXXXX".
#
# Requires: openssl, base64 (coreutils), jq.
# (-mac HMAC -macopt key:K is `openssl dgst -hmac K`, spelled so hexkey: fits the same line.) Run from anywhere: sh testdata/gen-signatures.sh
set -eu
cd "$(dirname "$0")"

# Keys look like Appwrite's: 128 hex characters, used as a string (not hex-decoded).
K_OLD=$(printf 'old' | openssl dgst -sha512 -r | cut -c1-128)
K_NEW=$(printf 'new' | openssl dgst -sha512 -r | cut -c1-128)
K_GONE=$(printf 'gone' | openssl dgst -sha512 -r | cut -c1-128)

# A realistic row of about 1 KiB (also the benchmark's row).
printf '%s' '{"$id":"post.2026.03.26","$sequence":"1234","$createdAt":"2026-03-20T08:15:00.000+00:00","$updatedAt":"2026-03-26T10:00:00.123+00:00","$permissions":["read(\"any\")","update(\"user:user.42\")","delete(\"user:user.42\")"],"title":"Caf\u00e9 culture in Montr\u00e9al","slug":"cafe-culture-in-montreal","body":"From the Plateau to Mile End, the city\u2019s caf\u00e9s are where neighbourhoods meet. We visited twelve of them over a rainy week, tasted far too many croissants and asked baristas what makes a good morning. This is what they told us, and where we would go back tomorrow.","lang":"en","subtitle":"Twelve caf\u00e9s, one rainy week","tags":["travel","food","canada"],"views":1523,"rating":4.5,"published":true,"url":"https:\/\/example.com\/posts\/cafe-culture","author":{"$id":"user.42","$sequence":"17","$createdAt":"2025-11-02T12:00:00.000+00:00","$updatedAt":"2026-01-05T09:30:00.000+00:00","$permissions":[],"name":"Zo\u00e9 Tremblay","handle":"zoe","$databaseId":"main","$tableId":"authors"},"$databaseId":"main","$tableId":"posts"}' > bodies/row.json
printf '%s' '{"$id":"r1","$sequence":1,"$createdAt":"2026-03-26T10:00:00.000+00:00","$updatedAt":"2026-03-26T10:00:00.000+00:00","$permissions":[],"name":"\u00e9t\u00e9 \ud83c\udf1e","path":"a\/b\/c","$databaseId":"main","$collectionId":"notes"}' > bodies/unicode.json

sign() { # sign URL KEY BODYFILE; a KEY of the form hex:<hex> is hex-decoded first
	case "$2" in
	hex:*) mac="-mac HMAC -macopt hexkey:${2#hex:}" ;;
	*) mac="-mac HMAC -macopt key:$2" ;;
	esac
	# shellcheck disable=SC2086 # $mac is deliberately split into options
	{ printf '%s' "$1"; cat "$3"; } | openssl dgst -sha1 $mac -binary | base64
}

PLAIN='https://sync.example.com/webhooks/appwrite'
# Configured with %20, %2F and '+'; servers <= 1.9.6 sign the rawurldecoded string, in which
# '+' stays '+' (rawurldecode, not urldecode).
ENC='https://sync.example.com/webhooks/app%20write%2Fx+y?token=a+b%2Bc'
ENC_DECODED='https://sync.example.com/webhooks/app write/x+y?token=a+b+c'
# Invalid escapes stay as they are, and decoding happens once: %2541 -> %41, not A.
ODD='https://sync.example.com/hooks/100%25%zz/a%2541b/%4'
ODD_DECODED='https://sync.example.com/hooks/100%%zz/a%41b/%4'

out=signatures.json.tmp
echo '[' > "$out"
sep=''
case_() { # name configured_url keys(comma-separated) signed_url key body valid
	sig=$(sign "$4" "$5" "bodies/$6")
	printf '%s' "$sep" >> "$out"
	jq -n --arg name "$1" --arg cu "$2" --arg keys "$3" --arg su "$4" --arg key "$5" \
		--arg body "$6" --arg sig "$sig" --argjson valid "$7" \
		'{name: $name, configured_url: $cu, keys: ($keys | split(",")), signed_url: $su,
		  key: $key, body: $body, signature: $sig, valid: $valid}' >> "$out"
	sep=','
}

case_ "plain url" "$PLAIN" "$K_NEW" "$PLAIN" "$K_NEW" row.json true
case_ "php-escaped non-ascii and slashes" "$PLAIN" "$K_NEW" "$PLAIN" "$K_NEW" unicode.json true
case_ "encoded url signed rawurldecoded (appwrite <= 1.9.6)" "$ENC" "$K_NEW" "$ENC_DECODED" "$K_NEW" row.json true
case_ "encoded url signed raw (newer appwrite)" "$ENC" "$K_NEW" "$ENC" "$K_NEW" row.json true
case_ "odd escapes signed rawurldecoded" "$ODD" "$K_NEW" "$ODD_DECODED" "$K_NEW" row.json true
case_ "odd escapes signed raw" "$ODD" "$K_NEW" "$ODD" "$K_NEW" row.json true
case_ "plus decoded as space is not rawurldecode" "$ENC" "$K_NEW" 'https://sync.example.com/webhooks/app write/x y?token=a b+c' "$K_NEW" row.json false
case_ "double decoding is not rawurldecode" "$ODD" "$K_NEW" 'https://sync.example.com/hooks/100%%zz/aAb/%4' "$K_NEW" row.json false
case_ "rotation: new key accepted" "$PLAIN" "$K_NEW,$K_OLD" "$PLAIN" "$K_NEW" row.json true
case_ "rotation: old key still accepted" "$PLAIN" "$K_NEW,$K_OLD" "$PLAIN" "$K_OLD" row.json true
case_ "rotation: removed key rejected" "$PLAIN" "$K_NEW" "$PLAIN" "$K_OLD" row.json false
case_ "unknown key rejected" "$PLAIN" "$K_NEW,$K_OLD" "$PLAIN" "$K_GONE" row.json false
case_ "trailing slash in appwrite, not in config" "$PLAIN" "$K_NEW" "$PLAIN/" "$K_NEW" row.json false
case_ "trailing slash in config, not in appwrite" "$PLAIN/" "$K_NEW" "$PLAIN" "$K_NEW" row.json false
case_ "explicit default port in appwrite" "$PLAIN" "$K_NEW" 'https://sync.example.com:443/webhooks/appwrite' "$K_NEW" row.json false
case_ "http instead of https" "$PLAIN" "$K_NEW" 'http://sync.example.com/webhooks/appwrite' "$K_NEW" row.json false
case_ "hex-decoded key is not the key" "$PLAIN" "$K_NEW" "$PLAIN" "hex:$K_NEW" row.json false
echo ']' >> "$out"
jq . "$out" > signatures.json
rm -f "$out"
