// Lambda@Edge (nodejs20.x, ES module), viewer-response: security headers,
// written the way Lambda's Node.js runtime takes an async handler.
const HEADERS = {
    'strict-transport-security': 'max-age=63072000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
};

export const handler = async (event) => {
    const response = event.Records[0].cf.response;
    for (const [name, value] of Object.entries(HEADERS)) {
        response.headers[name] = [{ key: name, value }];
    }
    return response;
};
