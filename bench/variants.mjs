// Gateway configurations the benchmark compares against a direct connection.
export const variants = {
  gateway: {
    async setup() {
      return { gatewayYaml: '' };
    },
  },
  'gateway-audit-off': {
    async setup() {
      return { gatewayYaml: 'audit:\n  enabled: false\n' };
    },
  },
};
