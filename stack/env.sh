# Source this file to get the local stack's coordinates for tests: `source stack/env.sh`.
eval "$("$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stack.sh" env)"
