module github.com/netns-session/netns-session

go 1.26.8
