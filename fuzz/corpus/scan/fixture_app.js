// fake tokens for the scanner tests
const github = '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';
const pat = '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';
const slack = 'xoxb-543160410461-0522756961329-OBk0hoUVuM6A3azPV3iVuT4G';
const stripe = 'sk_live_dqNuCm3tRgrERW28ophT8vF9';
const restricted = 'rk_live_ElfuUDggWRFEy9ZCNdc87KwU';
const testStripe = 'sk_test_Y7dm3jqFE87P9LHrWDbnWTRn';
const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxOTAwMDAwMDAwfQ.kse7wPU5jzisfEH_0rt38GCuCod-0xQTPXbMN7qmDUo';
// jwt.io's example token is documentation:
const demo = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const token = getToken(request);
const config = { password: "<your password>", apiKey: process.env.API_KEY };
const client = new Client({ apiKey: "h5zXhiqOuYoW8THn7QdbMxdgu0yN" });
